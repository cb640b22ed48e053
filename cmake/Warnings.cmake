# Warnings as errors for our own code only; generated protobuf code and system headers are exempt.
function(proxy_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference
    -Wformat=2 -Werror)
endfunction()
