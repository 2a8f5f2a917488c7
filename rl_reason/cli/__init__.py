"""The ``rl-reason`` command line. Each sub-command lives in its own module with a
``register(subparsers)`` function; heavy imports happen inside the handlers so that
``rl-reason --help`` and the torch-free commands start fast."""
