# The optional native part for real DSA hardware (native/livemig_dsa.c), built at install by
# scripts/build-addon.mjs with node-gyp. x86-64 Linux only; elsewhere nothing is built.
{
  "targets": [
    {
      "target_name": "livemig_dsa",
      "sources": ["native/livemig_dsa.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "conditions": [
        ["OS!='linux' or target_arch!='x64'", { "sources!": ["native/livemig_dsa.c"] }]
      ]
    }
  ]
}
