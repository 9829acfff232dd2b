"""Video decoding, test-time frame sampling and preprocessing (numpy + OpenCV, no torch)."""
