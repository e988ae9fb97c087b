"""int8 quantization: TFLite Micro's integer arithmetic, for the compiler and its tests.

`tinyc.quant.arith` holds, for every int8 kernel of runtime_c/ (tc_*_s8), the function that
computes its parameter struct from quantization parameters and a NumPy reference of its exact
integer arithmetic.
"""
