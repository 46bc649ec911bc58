"""trainlog: live, lossless training-log streaming for ML runs."""
