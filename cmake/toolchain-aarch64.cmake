# Cross build for 64-bit ARM Linux on a Debian 12 x86-64 host: Debian's aarch64-linux-gnu
# compiler, the arm64 libraries that scripts/setup-aarch64.sh unpacks into a sysroot folder, and
# qemu-user to run what the build runs (test discovery, the default model's conversion) and
# what ctest runs.
#
#   bash scripts/setup-aarch64.sh
#   cmake -S . -B build-aarch64 --toolchain cmake/toolchain-aarch64.cmake
#
# (scripts/test-aarch64.sh does all of it.) Another sysroot: -DLUTRA_AARCH64_SYSROOT=<folder>.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# The default is named from this file's folder, not the build folder: CMake reads this file
# again inside each try_compile's own scratch folder.
set(LUTRA_AARCH64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-aarch64/sysroot"
    CACHE PATH "arm64 packages unpacked by scripts/setup-aarch64.sh")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES LUTRA_AARCH64_SYSROOT)
get_filename_component(_lutra_sysroot "${LUTRA_AARCH64_SYSROOT}" ABSOLUTE)
set(_lutra_sysroot_libdir "${_lutra_sysroot}/usr/lib/aarch64-linux-gnu")
# The cross compiler's own C and C++ runtime.
set(_lutra_toolchain_root /usr/aarch64-linux-gnu)

# Not CMAKE_SYSROOT: the unpacked folder holds only lutra's dependencies, while libc and
# libstdc++ stay where the cross compiler looks for them. Headers, libraries and CMake packages
# are searched in both, programs (pkg-config, qemu) on the host.
set(CMAKE_FIND_ROOT_PATH "${_lutra_sysroot}" "${_lutra_toolchain_root}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# The unpacked libraries' own dependencies resolve from the same folder at link time.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_lutra_sysroot_libdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_lutra_sysroot_libdir}")

# pkg-config reads only the sysroot's .pc files and puts the sysroot in front of their paths.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_lutra_sysroot}")
set(ENV{PKG_CONFIG_LIBDIR} "${_lutra_sysroot_libdir}/pkgconfig:${_lutra_sysroot}/usr/share/pkgconfig")
unset(ENV{PKG_CONFIG_PATH})

# Every aarch64 program the build or ctest runs goes through qemu-user: -L finds the dynamic
# loader and libc, LD_LIBRARY_PATH (set inside the emulated process) the unpacked libraries.
find_program(LUTRA_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR
    "${LUTRA_QEMU_AARCH64}" -L "${_lutra_toolchain_root}" -E "LD_LIBRARY_PATH=${_lutra_sysroot_libdir}")

# perf/ needs oneDNN and Google Benchmark, which setup-aarch64.sh does not unpack: off unless
# asked for (-DLUTRA_BUILD_PERF=ON with a sysroot that has them).
set(LUTRA_BUILD_PERF OFF CACHE BOOL "Build the benchmarks in perf/")
