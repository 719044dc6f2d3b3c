import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_ddpg

from her.ddpg import Adam, actor_rl_loss, cloning_loss, critic_loss, critic_target, q_filter_mask
from her.learner import Batch, make_batch


def test_critic_target_is_clipped_to_clip_low_and_zero():
    y = critic_target(tf.constant([-1.0, 0.0, -1.0]), tf.constant([10.0, -100.0, -2.0]), gamma=0.5, clip_low=-2.0)
    # r + gamma * q_next = [4, -50, -2]
    assert np.allclose(y.numpy(), [0.0, -2.0, -2.0])


def test_critic_target_is_bounded_above_by_clip_high_for_rewards_of_success():
    # A 0/1 reward: what a return can gain, 1 / (1 - gamma) = 2 here, is the bound, not 0.
    y = critic_target(
        tf.constant([1.0, 0.0, 1.0]), tf.constant([10.0, -100.0, 1.0]), gamma=0.5, clip_low=-2.0, clip_high=2.0
    )
    # r + gamma * q_next = [6, -50, 1.5]
    assert np.allclose(y.numpy(), [2.0, -2.0, 1.5])


def test_critic_loss_is_a_mean_square():
    assert critic_loss(tf.constant([0.0, -1.0]), tf.constant([1.0, -1.0])).numpy() == pytest.approx(0.5)


def test_actor_loss_with_action_l2():
    q_pi = tf.constant([[-1.0], [-3.0]])
    pi = tf.constant([[0.5, 0.0], [1.0, 0.5]])
    # -mean(q) = 2; mean((pi/max_u)^2) over 4 entries = (0.25 + 0 + 1 + 0.25) / 4 = 0.375
    assert actor_rl_loss(q_pi, pi, max_u=1.0, action_l2=1.0).numpy() == pytest.approx(2.375)
    # max_u = 2 halves the actions inside the penalty: 1.5 / 16 = 0.09375
    assert actor_rl_loss(q_pi, pi, max_u=2.0, action_l2=1.0).numpy() == pytest.approx(2.09375)


def test_q_filter_is_strict_and_only_on_demo_rows():
    q_u = tf.constant([[1.0], [2.0], [3.0], [4.0]])
    q_pi = tf.constant([[0.0], [2.0], [4.0], [3.0]])
    is_demo = tf.constant([0.0, 1.0, 1.0, 1.0])
    # row 0 is the agent's own (never cloned), row 1 is a tie (does not pass), row 2 is worse, row 3 passes
    assert q_filter_mask(q_u, q_pi, is_demo).numpy().tolist() == [0.0, 0.0, 0.0, 1.0]


def test_bc_loss_is_a_sum_over_masked_rows():
    pi = tf.constant([[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]])
    u = tf.constant([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    mask = tf.constant([0.0, 1.0, 1.0])
    # rows 1 and 2: (1 + 1) + (0.25 + 0) = 2.25, a sum not a mean
    assert cloning_loss(pi, u, mask).numpy() == pytest.approx(2.25)


def test_make_batch_puts_demo_rows_last():
    def rows(n, value):
        return {
            "o": np.full((n, 2), value),
            "g": np.full((n, 1), value),
            "u": np.full((n, 2), value),
            "r": np.full(n, value),
            "o_2": np.full((n, 2), value),
        }

    batch = make_batch(rows(5, 0.0), rows(3, 1.0))
    assert batch.is_demo.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert np.array_equal(batch.o[:, 0], batch.is_demo)
    assert all(x.dtype == np.float32 for x in batch)


def test_make_batch_on_stacked_steps_puts_demo_rows_last_in_every_step():
    def rows(k, n, value):
        return {
            "o": np.full((k, n, 2), value),
            "g": np.full((k, n, 1), value),
            "u": np.full((k, n, 2), value),
            "r": np.full((k, n), value),
            "o_2": np.full((k, n, 2), value),
        }

    batch = make_batch(rows(3, 2, 0.0), rows(3, 1, 1.0))
    assert batch.o.shape == (3, 3, 2) and batch.r.shape == (3, 3)
    assert batch.is_demo.tolist() == [[0, 0, 1]] * 3
    assert np.array_equal(batch.o[..., 0], batch.is_demo) and np.array_equal(batch.r, batch.is_demo)


def test_k_stacked_steps_equal_k_single_steps():
    rng = np.random.default_rng(1)
    k, n = 3, 5
    batches = Batch(
        *(rng.normal(size=(k, n, d)).astype(np.float32) for d in (2, 1, 2)),
        -rng.integers(0, 2, (k, n)).astype(np.float32),
        rng.normal(size=(k, n, 2)).astype(np.float32),
        np.zeros((k, n), np.float32),
    )
    stacked, single = tiny_ddpg(hidden=8), tiny_ddpg(hidden=8)
    metrics = stacked.train_steps(batches)
    singles = [single.train(Batch(*(x[i] for x in batches))) for i in range(k)]
    for key, values in metrics.items():
        assert values.shape == (k,)
        np.testing.assert_allclose(values, [m[key] for m in singles], rtol=1e-6)
    # Weights, targets and normaliser; then every Adam moment and step count.
    np.testing.assert_allclose(stacked.flat_params(), single.flat_params(), rtol=1e-6, atol=1e-7)
    stacked_opt, single_opt = stacked.optimizer_state(), single.optimizer_state()
    assert stacked_opt.keys() == single_opt.keys()
    for key in stacked_opt:
        np.testing.assert_allclose(stacked_opt[key], single_opt[key], rtol=1e-6, atol=1e-7, err_msg=key)
    assert stacked.actor_opt.t.numpy() == k


def test_adam_matches_keras_adam_with_the_same_epsilon():
    start = np.array([1.0, -2.0, 3.0], np.float32)
    ours_var = tf.Variable(start)
    keras_var = tf.Variable(start)
    ours = Adam([ours_var], lr=0.1)
    keras = tf.keras.optimizers.Adam(learning_rate=0.1, epsilon=1e-8)
    for step in range(5):
        grad = tf.constant([0.5, -1.0, 2.0 + step], tf.float32)
        ours.apply([grad])
        keras.apply_gradients([(grad, keras_var)])
    assert np.allclose(ours_var.numpy(), keras_var.numpy(), atol=1e-6)


def test_polyak_target_update():
    agent = tiny_ddpg(polyak=0.9)
    for var in agent.main_params:
        var.assign(tf.ones_like(var))
    for var in agent.target_params:
        var.assign(tf.zeros_like(var))
    agent.update_target_net()
    assert all(np.allclose(v.numpy(), 0.1) for v in agent.target_params)
    agent.update_target_net()
    assert all(np.allclose(v.numpy(), 0.19) for v in agent.target_params)
    assert all(np.allclose(v.numpy(), 1.0) for v in agent.main_params)


def test_targets_start_equal_to_main_networks():
    agent = tiny_ddpg()
    for main, target in zip(agent.main_params, agent.target_params):
        assert np.array_equal(main.numpy(), target.numpy())


def constant_critic(agent, critic, value):
    """Zero kernels and a constant output bias make Q = value everywhere."""
    for var in critic.params:
        var.assign(tf.zeros_like(var))
    critic.net.biases[-1].assign([value])


def constant_actor(actor, action):
    """Zero kernels and output biases atanh(action / max_u) make pi = action everywhere."""
    for var in actor.params:
        var.assign(tf.zeros_like(var))
    actor.net.biases[-1].assign(np.arctanh(np.asarray(action, np.float32) / actor.max_u))


def test_train_step_critic_and_actor_losses_by_hand():
    agent = tiny_ddpg(gamma=0.98, clip_low=-50.0, action_l2=2.0)
    constant_critic(agent, agent.critic, -1.0)
    constant_critic(agent, agent.target_critic, -2.0)
    constant_actor(agent.actor, [0.5, -0.5])
    batch = Batch(
        o=np.zeros((2, 2), np.float32),
        g=np.zeros((2, 1), np.float32),
        u=np.zeros((2, 2), np.float32),
        r=np.array([-1.0, 0.0], np.float32),
        o_2=np.zeros((2, 2), np.float32),
        is_demo=np.zeros(2, np.float32),
    )
    metrics = agent.train(batch)
    # y = r + 0.98 * (-2) = [-2.96, -1.96]; Q = -1: loss = ((-1.96)^2 + (-0.96)^2) / 2 = 2.3816
    assert metrics["critic_loss"] == pytest.approx(2.3816, rel=1e-5)
    # Plain actor loss (no demos): -mean Q(o, g, pi) + action_l2 * mean pi^2 = 1 + 2 * 0.25 = 1.5
    assert metrics["actor_loss"] == pytest.approx(1.5, rel=1e-5)
    assert "cloning_loss" not in metrics  # without demonstrations there is nothing to clone, and nothing logged


def test_train_step_actor_loss_weights_with_bc_and_q_filter():
    lam1, lam2 = 0.001, 0.5
    agent = tiny_ddpg(bc_loss=True, q_filter=True, prm_loss_weight=lam1, aux_loss_weight=lam2, action_l2=1.0)
    rng = np.random.default_rng(0)
    batch = make_batch(
        {
            "o": rng.normal(size=(3, 2)),
            "g": rng.normal(size=(3, 1)),
            "u": rng.uniform(-1, 1, (3, 2)),
            "r": -np.ones(3),
            "o_2": rng.normal(size=(3, 2)),
        },
        {
            "o": rng.normal(size=(2, 2)),
            "g": rng.normal(size=(2, 1)),
            "u": rng.uniform(-1, 1, (2, 2)),
            "r": -np.ones(2),
            "o_2": rng.normal(size=(2, 2)),
        },
    )
    # Expected value from the networks before the step (normaliser stats are still mean 0, std 1).
    pi = agent.actor(batch.o, batch.g)
    q_pi = agent.critic(batch.o, batch.g, pi)
    q_u = agent.critic(batch.o, batch.g, batch.u)
    passes = (q_u.numpy()[:, 0] > q_pi.numpy()[:, 0]) & (batch.is_demo == 1)
    bc = np.sum(np.square(pi.numpy() - batch.u)[passes])
    rl = -np.mean(q_pi.numpy()) + np.mean(np.square(pi.numpy()))
    metrics = agent.train(batch)
    assert metrics["actor_loss"] == pytest.approx(lam1 * rl + lam2 * bc, rel=1e-5)
    assert metrics["cloning_loss"] == pytest.approx(bc, rel=1e-5)
    assert metrics["q_filter_pass"] == pytest.approx(passes.sum() / 2)


def test_bc_without_q_filter_clones_every_demo_row():
    agent = tiny_ddpg(bc_loss=True, q_filter=False, prm_loss_weight=0.0, aux_loss_weight=1.0)
    own = {
        "o": np.zeros((2, 2)),
        "g": np.zeros((2, 1)),
        "u": np.full((2, 2), 9.0),
        "r": -np.ones(2),
        "o_2": np.zeros((2, 2)),
    }
    demo = {
        "o": np.zeros((1, 2)),
        "g": np.zeros((1, 1)),
        "u": np.ones((1, 2)),
        "r": -np.ones(1),
        "o_2": np.zeros((1, 2)),
    }
    batch = make_batch(own, demo)
    pi = agent.actor(batch.o, batch.g).numpy()
    metrics = agent.train(batch)
    # Only the demo row counts; the agent's own rows (u = 9) would dominate if they leaked in.
    assert metrics["cloning_loss"] == pytest.approx(np.sum(np.square(pi[2] - 1.0)), rel=1e-5)
    assert metrics["q_filter_pass"] == 1.0


def first_adam_step(params, grads, lr):
    """Parameters after Adam's first step: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = lr * np.sqrt(1 - b2) / (1 - b1)
    return [
        p.numpy() - step * (1 - b1) * g.numpy() / (np.sqrt((1 - b2) * np.square(g.numpy())) + eps)
        for p, g in zip(params, grads)
    ]


def test_actor_step_moves_only_the_actor_and_critic_step_only_the_critic():
    agent = tiny_ddpg(hidden=8, Q_lr=1e-2, pi_lr=2e-2)
    rng = np.random.default_rng(3)
    # Normaliser at mean 0, std 1 and inputs inside +-norm_clip: the networks see the batch as it is.
    batch = make_batch(
        {
            "o": rng.uniform(-1, 1, (4, 2)),
            "g": rng.uniform(-1, 1, (4, 1)),
            "u": rng.uniform(-1, 1, (4, 2)),
            "r": -np.ones(4),
            "o_2": rng.uniform(-1, 1, (4, 2)),
        }
    )
    o, g, u, r, o_2, _ = (tf.constant(x) for x in batch)
    targets = [v.numpy().copy() for v in agent.target_params]

    # Each loss's gradient by hand, at the parameters before the step.
    y = critic_target(r[:, None], agent.target_critic(o_2, g, agent.target_actor(o_2, g)), agent.gamma, agent.clip_low)
    with tf.GradientTape() as tape:
        loss_q = critic_loss(y, agent.critic(o, g, u))
    critic_grads = tape.gradient(loss_q, agent.critic.params)
    with tf.GradientTape(persistent=True) as tape:
        pi = agent.actor(o, g)
        loss_pi = actor_rl_loss(agent.critic(o, g, pi), pi, agent.max_u, agent.action_l2)
    actor_grads = tape.gradient(loss_pi, agent.actor.params)
    # The actor loss does reach the critic's weights: applying it there would show below.
    assert any(np.abs(grad.numpy()).max() > 1e-4 for grad in tape.gradient(loss_pi, agent.critic.params))
    expected_actor = first_adam_step(agent.actor.params, actor_grads, lr=2e-2)
    expected_critic = first_adam_step(agent.critic.params, critic_grads, lr=1e-2)

    agent.train(batch)
    for var, expected in zip(agent.actor.params + agent.critic.params, expected_actor + expected_critic):
        np.testing.assert_allclose(var.numpy(), expected, rtol=1e-4, atol=1e-6, err_msg=var.name)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(targets, agent.target_params))
    assert agent.actor_opt.t.numpy() == 1 and agent.critic_opt.t.numpy() == 1


def test_acting_with_the_target_networks_rates_the_target_actor_with_the_target_critic():
    # The reference's get_actions takes every output from the target network: test/mean_Q under
    # test_with_polyak is Q'(o, g, pi'(o, g)).
    agent = tiny_ddpg()
    constant_actor(agent.actor, [0.5, 0.5])
    constant_actor(agent.target_actor, [-0.25, 0.75])
    constant_critic(agent, agent.critic, -1.0)
    constant_critic(agent, agent.target_critic, -3.0)
    agent.update_normalizer({"o": np.zeros((1, 2)), "g": np.zeros((1, 1))})  # the numpy copy is refreshed
    o, g = np.zeros((2, 2), np.float32), np.zeros((2, 1), np.float32)
    for use_target_net, action, q_value in [(False, [0.5, 0.5], -1.0), (True, [-0.25, 0.75], -3.0)]:
        u, q = agent.get_actions(o, g, use_target_net=use_target_net, compute_Q=True)
        np.testing.assert_allclose(u, [action] * 2, rtol=1e-6)
        np.testing.assert_allclose(q, [[q_value]] * 2, rtol=1e-6)
        u_tf, q_tf = agent.act_tf(tf.constant(o), tf.constant(g), use_target_net, True)
        np.testing.assert_allclose(q_tf.numpy(), [[q_value]] * 2, rtol=1e-6)


def test_get_actions_noise_and_random_actions():
    agent = tiny_ddpg()
    o, g = np.zeros((1000, 2), np.float32), np.zeros((1000, 1), np.float32)
    clean, _ = agent.get_actions(o, g)
    assert np.allclose(clean, clean[0])  # same input, same deterministic action
    noisy, _ = agent.get_actions(o, g, noise_eps=0.2, rng=np.random.default_rng(0))
    assert np.std(noisy - clean) == pytest.approx(0.2, rel=0.1)
    assert np.all(np.abs(noisy) <= 1.0)
    random, _ = agent.get_actions(o, g, random_eps=0.3, rng=np.random.default_rng(0))
    replaced = np.any(random != clean, axis=1)
    assert replaced.mean() == pytest.approx(0.3, abs=0.05)
    _, q = agent.get_actions(o[:3], g[:3], compute_Q=True)
    assert q.shape == (3, 1)


def test_network_state_round_trip():
    a, b = tiny_ddpg(seed=1), tiny_ddpg(seed=2)
    a.update_normalizer({"o": np.ones((5, 2)), "g": np.ones((5, 1))})
    b.load_network_state(a.network_state())
    assert np.array_equal(a.flat_params(), b.flat_params())
    o = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    g = np.zeros((4, 1), np.float32)
    assert np.array_equal(a.get_actions(o, g)[0], b.get_actions(o, g)[0])


@pytest.mark.parametrize("layer_norm", [False, True])
def test_numpy_acting_matches_the_graph_after_updates(layer_norm):
    dims = {"o": 5, "g": 3, "u": 4}
    learner = tiny_ddpg(
        dims,
        hidden=32,
        layers=2,
        max_u=2.0,
        Q_lr=1e-2,
        pi_lr=1e-2,
        polyak=0.5,
        clip_obs=3.0,
        seed=1,
        layer_norm=layer_norm,
    )
    rng = np.random.default_rng(0)

    def check():
        o = rng.normal(0, 3, (7, 5)).astype(np.float32)  # some beyond clip_obs
        g = rng.normal(0, 1, (7, 3)).astype(np.float32)
        for use_target_net in (False, True):
            u_np, q_np = learner.get_actions(o, g, use_target_net=use_target_net, compute_Q=True)
            u_tf, q_tf = learner.act_tf(tf.constant(o), tf.constant(g), use_target_net, True)
            np.testing.assert_allclose(u_np, u_tf.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(q_np, q_tf.numpy(), rtol=1e-5, atol=1e-6)

    check()
    # Every kind of change must reach the numpy copy: normaliser, gradient steps, target update.
    learner.update_normalizer({"o": rng.normal(1, 2, (50, 5)), "g": rng.normal(0, 1, (50, 3))})
    check()
    batch = Batch(
        *(rng.normal(size=s).astype(np.float32) for s in [(16, 5), (16, 3), (16, 4), (16,), (16, 5)]),
        np.zeros(16, np.float32),
    )
    for _ in range(3):
        learner.train(batch)
    check()
    learner.update_target_net()
    check()


def test_layer_norm_standardises_each_hidden_row_then_scales_and_shifts():
    from her.actor_critic import MLP
    from her.numpy_actor import mlp

    net = MLP([2, 2, 1], np.random.default_rng(0), layer_norm=True)
    # Identity hidden layer, so the hidden row is the input: [1, 3] standardises to [-1, 1] (mean 2, std 1).
    net.kernels[0].assign(np.eye(2, dtype=np.float32))
    net.scales[0].assign([2.0, 2.0])
    net.offsets[0].assign([0.5, 0.5])  # -> [-1.5, 2.5], ReLU -> [0, 2.5]
    net.kernels[1].assign([[1.0], [1.0]])
    x = np.array([[1.0, 3.0]], np.float32)
    c = 1 / np.sqrt(1 + 1e-5)  # the epsilon sits inside the square root, as in PyTorch's LayerNorm
    np.testing.assert_allclose(net(tf.constant(x)).numpy(), [[2 * c + 0.5]], rtol=1e-6)
    np.testing.assert_allclose(
        mlp([v.numpy() for v in net.params], x, layer_norm=True), net(tf.constant(x)).numpy(), rtol=1e-6
    )


def test_without_layer_norm_the_parameters_are_the_references_kernels_and_biases():
    agent, normed = tiny_ddpg(layers=2), tiny_ddpg(layers=2, layer_norm=True)
    assert [tuple(v.shape) for v in agent.actor.params] == [(3, 3), (3,), (3, 3), (3,), (3, 2), (2,)]
    # A scale and an offset after each hidden layer's bias; none after the output layer.
    assert [tuple(v.shape) for v in normed.actor.params] == [
        (3, 3),
        (3,),
        (3,),
        (3,),
        (3, 3),
        (3,),
        (3,),
        (3,),
        (3, 2),
        (2,),
    ]


def tiny_twin(**overrides):
    from conftest import DDPG_ARGS, TINY_DIMS

    from her.twin_ddpg import TwinCriticDDPG

    return TwinCriticDDPG(TINY_DIMS, **{**DDPG_ARGS, **overrides})


def test_twin_critics_both_learn_the_smaller_target_value():
    agent = tiny_twin(gamma=0.98, clip_low=-50.0)
    constant_critic(agent, agent.critic, -1.0)
    constant_critic(agent, agent.critic2, -3.0)
    constant_critic(agent, agent.target_critic, -2.0)
    constant_critic(agent, agent.target_critic2, -1.5)
    batch = Batch(
        o=np.zeros((2, 2), np.float32),
        g=np.zeros((2, 1), np.float32),
        u=np.zeros((2, 2), np.float32),
        r=np.array([-1.0, 0.0], np.float32),
        o_2=np.zeros((2, 2), np.float32),
        is_demo=np.zeros(2, np.float32),
    )
    metrics = agent.train(batch)
    # y = r + 0.98 * min(-2, -1.5) = [-2.96, -1.96]. Critic 1 (Q = -1): ((-1.96)^2 + (-0.96)^2) / 2 = 2.3816;
    # critic 2 (Q = -3): (0.04^2 + 1.04^2) / 2 = 0.5416. Reported per critic: their mean.
    assert metrics["critic_loss"] == pytest.approx((2.3816 + 0.5416) / 2, rel=1e-5)
    # The actor is rated by the first critic only: -mean Q = 1, plus action_l2 * mean pi^2 (pi = 0) = 1.
    assert metrics["actor_loss"] == pytest.approx(1.0, rel=1e-5)


def test_twin_learner_saves_and_loads_its_second_critic_and_acts_with_the_first():
    a, b = tiny_twin(seed=1), tiny_twin(seed=2)
    names = [name for name, _ in a.named_networks()]
    assert names == ["actor", "critic", "target_actor", "target_critic", "critic2", "target_critic2"]
    assert not np.array_equal(a.critic.params[0].numpy(), a.critic2.params[0].numpy())
    # The first four networks start as DDPG's of the same seed.
    ddpg = tiny_ddpg(seed=1)
    for name, net in ddpg.named_networks():
        for x, y in zip(net.params, dict(a.named_networks())[name].params):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    b.load_network_state(a.network_state())
    b.load_optimizer_state(a.optimizer_state())
    assert np.array_equal(a.flat_params(), b.flat_params())
    o, g = np.ones((3, 2), np.float32), np.zeros((3, 1), np.float32)
    _, q = a.get_actions(o, g, compute_Q=True)
    u_tf, q_tf = a.act_tf(tf.constant(o), tf.constant(g), False, True)
    np.testing.assert_allclose(q, q_tf.numpy(), rtol=1e-5)
    np.testing.assert_allclose(q_tf.numpy(), a.critic(*a._normalize_og(o, g), u_tf).numpy(), rtol=1e-6)


def test_target_noise_is_clipped_then_the_action_bounded():
    from her.twin_ddpg import smoothed_action

    u = tf.constant([[0.0, 0.9, -0.2]])
    z = tf.constant([[1.0, 1.0, -10.0]])  # max_u 1: noise 0.2, 0.2, -2 -> -0.5; max_u 2: 0.4, 0.4, -4 -> -1
    np.testing.assert_allclose(smoothed_action(u, z, 0.2, 0.5, 1.0).numpy(), [[0.2, 1.0, -0.7]], rtol=1e-6)
    np.testing.assert_allclose(smoothed_action(u, z, 0.2, 0.5, 2.0).numpy(), [[0.4, 1.3, -1.2]], rtol=1e-6)


def test_target_noise_changes_learning_and_is_drawn_from_the_seed_and_step_alone():
    noisy = [tiny_twin(target_noise=0.2, seed=5) for _ in range(2)]
    quiet = tiny_twin(seed=5)
    rng = np.random.default_rng(0)
    batch = Batch(
        *(rng.normal(size=s).astype(np.float32) for s in [(8, 2), (8, 1), (8, 2), (8,), (8, 2)]),
        np.zeros(8, np.float32),
    )
    losses = [[agent.train(batch)["critic_loss"] for _ in range(3)] for agent in [*noisy, quiet]]
    assert losses[0] == losses[1] and losses[0] != losses[2]
