"""tinyc: an ahead-of-time compiler from trained neural networks to dependency-free C for Arm
Cortex-M microcontrollers, with verification against the Python reference on host and on an
emulated MCU."""

__version__ = "0.1.0"
