"""Model runtime, default model builder, adaptation and split inference."""

import os

# oneDNN's AMX kernels (used for bfloat16 matrix products on CPU) stop the process with an
# illegal instruction on virtual machines whose CPUID advertises AMX that the hypervisor
# does not enable; capping oneDNN at AVX-512 with bf16 keeps bf16 working there. oneDNN
# reads the variable at its first use, so this holds for every process that imports the
# runtime. Set ONEDNN_MAX_CPU_ISA=ALL on hosts where AMX works.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
