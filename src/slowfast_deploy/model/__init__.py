"""The SlowFast network in plain PyTorch and mmaction2 checkpoint loading (needs torch)."""
