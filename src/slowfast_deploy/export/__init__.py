"""Export to ONNX with the reference contract, simplify, validate, and compile for a runtime."""
