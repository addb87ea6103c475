// NAME
//   test_job_queue.cpp - bounded queue: bound, close and drain
#include "icap-milter/scan/job_queue.hpp"

#include <doctest/doctest.h>

#include <atomic>
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
