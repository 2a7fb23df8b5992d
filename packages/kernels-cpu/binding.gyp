{
  # razorkv_cpu.node: GEMM (OpenBLAS when found, own AVX2/FMA kernel otherwise), attention, quantized matmul.
  # native/detect.mjs decides the variant; RAZORKV_BLAS=off / RAZORKV_SIMD=off / RAZORKV_VNNI=off force the fallbacks.
  "variables": {
    "razorkv_blas%": "<!(node native/detect.mjs blas)",
    "razorkv_simd%": "<!(node native/detect.mjs simd)",
    "razorkv_vnni%": "<!(node native/detect.mjs vnni)"
  },
  "targets": [
    {
      "target_name": "razorkv_cpu",
      "sources": [
        "native/addon.cc",
        "native/threadpool.cc",
        "native/gemm.cc",
        "native/attention.cc",
        "native/elementwise.cc",
        "native/qdot.cc",
        "native/qmatmul.cc",
        "native/qgemm.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      },
      "conditions": [
        ["razorkv_blas==1", {
          "defines": ["RAZORKV_OPENBLAS=1"],
          "cflags_cc": ["<!@(node native/detect.mjs blas-cflags)"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<!@(node native/detect.mjs blas-cflags)"] },
          "libraries": ["<!@(node native/detect.mjs blas-libs)"]
        }],
        ["razorkv_simd==1", {
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
        }],
        ["razorkv_vnni==1", {
          "cflags_cc": ["-mavxvnni"]
        }]
      ]
    }
  ]
}
