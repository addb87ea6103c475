// NAME
//   test_mime_golden.cpp - golden files of the MIME walker's reading of every fixture
// SUMMARY
//   Each .eml under tests/data/mime/ and tests/data/mime/corpus/ (the
//   adversarial corpus, one message or more per class of MIME trick, see
//   its MANIFEST) is walked with the walker's defaults (whole-message
//   view only for ambiguous or suspect MIME), and the result is printed
//   as text: the verdict on the structure (hashable, suspect or
//   ambiguous) with every reason, then one line per item (part id, type,
//   encoding, file name, size, hash prefix, scannable or why not). The
//   text must equal tests/data/mime/golden/<dir>_<name>.txt; set
//   ICAPM_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate
//   change (and read the diff).
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/walker.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace icapm;

namespace {

namespace fs = std::filesystem;

// read_all - a file's bytes ("" when missing).
std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// walk_file - walk a fixture from an in-memory spool.
WalkResult walk_file(const fs::path& p) {
    std::string raw = read_all(p);
    Spool s("/tmp", 4u << 20);
    s.append(raw);
    WalkLimits lim; // MaxMimeDepth 16, MaxMimeParts 1000: the config's defaults
    return walk_message(s, lim);
}

} // namespace

TEST_CASE("mime golden: every fixture and corpus message walks as recorded") {
    const fs::path data = TEST_DATA_DIR "/mime";
    const fs::path golden = data / "golden";
    const bool update = std::getenv("ICAPM_UPDATE_GOLDEN") != nullptr;
    if (update) fs::create_directories(golden);
    std::vector<fs::path> inputs;
    for (const fs::path& dir : {data, data / "corpus"}) {
        if (!fs::exists(dir)) continue;
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().extension() == ".eml") inputs.push_back(e.path());
    }
    std::sort(inputs.begin(), inputs.end());
    CHECK(inputs.size() >= 20);
    for (const auto& in : inputs) {
        std::string name = in.parent_path().filename().string() + "_" + in.stem().string() + ".txt";
        CAPTURE(name);
        std::string got;
        try {
            got = walk_report(walk_file(in));
        } catch (const std::exception& e) {
            got = std::string("error: ") + e.what() + "\n";
        }
        fs::path ref = golden / name;
        if (update) {
            std::ofstream(ref, std::ios::binary) << got;
            continue;
        }
        CHECK(read_all(ref) == got);
    }
}
