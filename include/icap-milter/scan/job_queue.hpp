// NAME
//   job_queue.hpp - bounded multi-producer, multi-consumer queue
// SUMMARY
//   push() waits while the queue is full (with a deadline, so a stuck
//   scanner backs up into OnFail rather than into unbounded memory) and
//   takes the item only when it succeeds;
//   pop() waits for work until close(). After close(), pop() still drains
//   what was queued, then returns nullopt.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace icapm {

template <typename T>
class JobQueue {
public:
    explicit JobQueue(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

    // push - enqueue, waiting until `until` for room; false if full or
    // closed, and then `item` is left untouched, so the caller may try again.
    bool push(T&& item, std::chrono::steady_clock::time_point until) {
        std::unique_lock lock(mutex_);
        if (!not_full_.wait_until(lock, until, [&] { return closed_ || items_.size() < capacity_; }))
            return false;
        if (closed_) return false;
        items_.push_back(std::move(item));
        not_empty_.notify_one();
        return true;
    }

    // pop - next item; nullopt once closed and drained.
    std::optional<T> pop() {
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
        if (items_.empty()) return std::nullopt;
        T item = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_one();
        return item;
    }

    // close - refuse new items and wake every waiter.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    // size - items waiting now.
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<T> items_;
    std::size_t capacity_;
    bool closed_ = false;
};

} // namespace icapm
