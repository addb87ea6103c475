// NAME
//   byte_source.hpp - a rewindable, sized stream of bytes
// SUMMARY
//   The one interface between whoever holds decoded bytes (mime/) and
//   whoever ships them somewhere (scan/). Readers never copy the whole
//   object into memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

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

} // namespace icapm
