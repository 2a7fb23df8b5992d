{
  # razorkv_cuda.node: N-API binding of the CUDA kernels (native/kernels.cu) and their CPU references
  # (native/reference.cpp). native/build.mjs compiles the kernels with nvcc first when nvcc exists; without them
  # (native/gyp-config.mjs answers 0) the addon carries the CPU references only.
  "variables": {
    "razorkv_cuda%": "<!(node native/gyp-config.mjs cuda)"
  },
  "targets": [
    {
      "target_name": "razorkv_cuda",
      "sources": ["native/addon.cpp", "native/reference.cpp"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" },
      "conditions": [
        ["razorkv_cuda==1", {
          "include_dirs": ["<!(node native/gyp-config.mjs include)"],
          "libraries": ["<!@(node native/gyp-config.mjs libraries)"]
        }, {
          "defines": ["RKV_NO_CUDA=1"]
        }]
      ]
    }
  ]
}
