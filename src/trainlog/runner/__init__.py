"""The runner: the process that owns a run's child and captures its output."""
