# Warnings as errors for our own code only; generated protobuf code and system headers are exempt.
# Four GCC 12 middle-end warnings fire inside system headers after inlining, where the
# system-header exemption no longer applies, and are false positives there:
#  -Wnull-dereference and -Wmismatched-new-delete on Asio's coroutine frames (GCC PR 105111),
#  -Wdangling-pointer on yaml-cpp's node implementation,
#  -Wrestrict on std::string concatenation at -O3 (GCC PR 105651; broke Release and Docker builds
#   twice, in code that only builds a string), kept on for the RelWithDebInfo builds.
function(proxy_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2 -Werror
    $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete -Wno-dangling-pointer>
    $<$<AND:$<CXX_COMPILER_ID:GNU>,$<CONFIG:Release>>:-Wno-restrict>)
endfunction()
