{
  "targets": [
    {
      "target_name": "node_toa",
      "sources": [
        "native/addon.cc",
        "native/toa_parse.cc",
        "native/toa_sys.cc",
        "native/js_values.cc",
        "native/tap_table.cc",
        "native/tap_filter.cc",
        "native/tap_sockets.cc",
        "native/sockops.cc",
        "native/sockops_parse.cc",
        "native/tap_addon.cc",
        "native/proxy_parse.cc",
        "native/proxy_sys.cc",
        "native/proxy_addon.cc",
        "native/spp_parse.cc",
        "native/dgram_header.cc",
        "native/uoa_parse.cc",
        "native/uoa_tap.cc",
        "native/udp_addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra"],
      "cflags_cc": ["-fvisibility=hidden", "-fstack-protector-strong", "-Wall", "-Wextra", "-std=c++17"],
      "xcode_settings": {
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-fstack-protector-strong", "-Wall", "-Wextra"]
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17"] }
      },
      "conditions": [
        ["OS=='win'", { "libraries": ["ws2_32.lib"] }]
      ]
    }
  ]
}
