// NAME
//   lock_guarded.hpp - a value reachable only while its mutex is held
// SUMMARY
//   LockGuarded<T> owns a T and a mutex. lock() returns a handle that
//   holds the lock for its lifetime and gives access to the value, so
//   code cannot touch the value unlocked (the compiler enforces what a
//   "// under the mutex" comment only asks for). The handle exposes its
//   std::unique_lock for condition variables. After PowerDNS's
//   LockGuarded.
// DIAGNOSTICS
//   None; misuse (a handle kept past its scope) is what the type prevents.
#pragma once

#include <mutex>
#include <utility>

namespace icapm {

template <typename T>
class LockGuarded {
public:
    // Handle - the locked value; unlocks when destroyed.
    template <typename V>
    class Handle {
    public:
        Handle(std::mutex& m, V& value) : lock_(m), value_(&value) {}
        V* operator->() const noexcept { return value_; }
        V& operator*() const noexcept { return *value_; }
        // lock - for condition_variable::wait().
        std::unique_lock<std::mutex>& lock() noexcept { return lock_; }

    private:
        std::unique_lock<std::mutex> lock_;
        V* value_;
    };

    LockGuarded() = default;
    explicit LockGuarded(T value) : value_(std::move(value)) {}
    LockGuarded(const LockGuarded&) = delete;
    LockGuarded& operator=(const LockGuarded&) = delete;

    // lock - the value, locked until the handle goes.
    Handle<T> lock() { return Handle<T>(mutex_, value_); }
    // lock - read-only access, locked the same way.
    Handle<const T> lock() const { return Handle<const T>(mutex_, value_); }

private:
    mutable std::mutex mutex_;
    T value_{};
};

} // namespace icapm
