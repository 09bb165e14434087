"""What operators touch: the CLI, `doctor`, and operator actions as SQL calls."""
