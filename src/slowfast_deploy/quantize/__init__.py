"""int8: quantization, the agreement search, fidelity to fp32, calibration clips."""
