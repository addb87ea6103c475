// NAME
//   test_job_queue.cpp - bounded queue: bound, close and drain
#include "icap-milter/scan/job_queue.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

using namespace icapm;
using namespace std::chrono_literals;

TEST_CASE("job queue: push fails when full past the deadline") {
    JobQueue<int> q(2);
    auto soon = std::chrono::steady_clock::now() + 20ms;
    CHECK(q.push(1, soon));
    CHECK(q.push(2, soon));
    CHECK_FALSE(q.push(3, std::chrono::steady_clock::now() + 20ms));
    CHECK(q.size() == 2);
}

TEST_CASE("job queue: close drains queued items, then ends") {
    JobQueue<int> q(4);
    auto later = std::chrono::steady_clock::now() + 1s;
    q.push(1, later);
    q.push(2, later);
    q.close();
    CHECK_FALSE(q.push(3, later));
    CHECK(q.pop() == 1);
    CHECK(q.pop() == 2);
    CHECK_FALSE(q.pop().has_value());
}

TEST_CASE("job queue: many producers and consumers lose nothing") {
    JobQueue<int> q(8);
    std::atomic<long> sum{0};
    std::vector<std::thread> consumers;
    for (int i = 0; i < 3; ++i)
        consumers.emplace_back([&] {
            while (auto v = q.pop()) sum += *v;
        });
    std::vector<std::thread> producers;
    for (int p = 0; p < 3; ++p)
        producers.emplace_back([&] {
            for (int i = 1; i <= 1000; ++i) REQUIRE(q.push(int(i), std::chrono::steady_clock::now() + 5s));
        });
    for (auto& t : producers) t.join();
    q.close();
    for (auto& t : consumers) t.join();
    CHECK(sum == 3L * 1000 * 1001 / 2);
}

TEST_CASE("job queue: a push that fails leaves the item with the caller, who may push it again") {
    JobQueue<std::unique_ptr<int>> q(1);
    const auto soon = [] { return std::chrono::steady_clock::now() + 20ms; };
    REQUIRE(q.push(std::make_unique<int>(1), soon()));
    auto item = std::make_unique<int>(2);
    CHECK_FALSE(q.push(std::move(item), soon()));
    REQUIRE(item);            // not consumed by the failed push
    CHECK(*item == 2);
    REQUIRE(q.pop());
    CHECK(q.push(std::move(item), soon()));
    CHECK_FALSE(item);        // taken now
    auto got = q.pop();
    REQUIRE(got);
    REQUIRE(*got);
    CHECK(**got == 2);
}
