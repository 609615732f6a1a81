"""The equal-step science benchmark: designers against the real-game-only baseline, through ``envgen run``."""
