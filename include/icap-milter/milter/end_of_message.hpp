// NAME
//   end_of_message.hpp - parse, scan and decide for one whole message
#pragma once

#include "icap-milter/milter/context.hpp"
#include "icap-milter/policy/policy.hpp"

#include <functional>

namespace icapm {

// Outcome - the decision plus what the headers and the log need.
struct Outcome {
    Decision decision;
    std::string scanners;   // "icaps://h:p/avscan ISTag=..." for X-Virus-Scanned
    std::string parts_log;  // "1:clean 2:infected(Eicar)" for the summary line
    std::size_t parts = 0;
};

// process_message - walk the spool, scan every item, apply policy. Never
// throws: failures become the OnFail decision with a reason.
Outcome process_message(const Runtime& rt, MessageContext& msg, const std::function<void()>& progress);

} // namespace icapm
