// NAME
//   byte_source.hpp - a rewindable, sized stream of bytes
// SUMMARY
//   The one interface between whoever holds decoded bytes (mime/) and
//   whoever ships them somewhere (scan/). Readers never copy the whole
//   object into memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace icapm {

// ByteSource - sequential reader over a fixed-size object.
class ByteSource {
public:
    virtual ~ByteSource() = default;
    // read - copy up to out.size() bytes; returns 0 only at end. Throws
    // std::system_error on I/O failure.
    virtual std::size_t read(std::span<char> out) = 0;
    // rewind - start again from byte 0 (used when a scan is retried).
    virtual void rewind() = 0;
    // size - total number of bytes this source yields.
    virtual std::uint64_t size() const = 0;
};

// ViewSource - a ByteSource over bytes in memory that the caller keeps
// alive (a spool's buffer, a canary).
class ViewSource final : public ByteSource {
public:
    explicit ViewSource(std::string_view data) noexcept : data_(data) {}
    // read - copy the next bytes.
    std::size_t read(std::span<char> out) override {
        const std::size_t n = std::min(out.size(), data_.size() - pos_);
        if (n == 0) return 0; // an empty view may be null
        std::memcpy(out.data(), data_.data() + pos_, n);
        pos_ += n;
        return n;
    }
    // rewind - back to byte 0.
    void rewind() override { pos_ = 0; }
    // size - bytes in the view.
    std::uint64_t size() const override { return data_.size(); }

private:
    std::string_view data_;
    std::size_t pos_ = 0;
};

} // namespace icapm
