// Awaiting a CommitTicket from an Asio coroutine without blocking an I/O thread: the completion
// is posted back to the awaiting coroutine's executor (its connection strand).
#pragma once

#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "queue/commit_ticket.hpp"

namespace proxy::queue {

template <typename CompletionToken>
auto async_wait_commit(std::shared_ptr<CommitTicket> ticket, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(bool)>(
      [](auto handler, std::shared_ptr<CommitTicket> waited) {
        using Handler = decltype(handler);
        // The handler is move-only, std::function wants a copyable callable: share it. The work
        // guard keeps io_context::run() from returning while the spool still owes an answer.
        auto executor = boost::asio::get_associated_executor(handler);
        auto shared = std::make_shared<Handler>(std::move(handler));
        auto work = std::make_shared<boost::asio::executor_work_guard<decltype(executor)>>(executor);
        waited->on_complete([shared, work](bool stored) {
          auto target = work->get_executor();
          boost::asio::post(target, [shared, work, stored]() mutable {
            (*shared)(stored);
            work->reset();
          });
        });
      },
      token, std::move(ticket));
}

}  // namespace proxy::queue
