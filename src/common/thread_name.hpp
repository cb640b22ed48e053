// Names the calling thread for ps -L, top -H, perf and gdb (at most 15 characters).
#pragma once

#include <pthread.h>

namespace proxy {

inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace proxy
