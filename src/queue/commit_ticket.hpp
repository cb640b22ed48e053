// The promise behind a request acknowledged by the spool: completed (true) once its records are
// written and, with fsync: always, flushed; false when the write failed. Completed exactly once,
// from the spool's writer thread; the waiter is either a callback or a blocking wait.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

namespace proxy::queue {

class CommitTicket {
 public:
  void complete(bool stored) {
    std::function<void(bool)> callback;
    {
      std::lock_guard lock(mutex_);
      result_ = stored;
      callback = std::move(callback_);
    }
    done_.notify_all();
    if (callback) callback(stored);
  }

  // Runs `callback` on completion: at once (in this thread) if already complete, else in the
  // completing thread. `callback` must not block.
  void on_complete(std::function<void(bool)> callback) {
    std::unique_lock lock(mutex_);
    if (result_) {
      const bool stored = *result_;
      lock.unlock();
      callback(stored);
      return;
    }
    callback_ = std::move(callback);
  }

  bool wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return result_.has_value(); });
    return *result_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::optional<bool> result_;
  std::function<void(bool)> callback_;
};

}  // namespace proxy::queue
