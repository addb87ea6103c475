// NAME
//   gobject_ptr.hpp - single-owner handles for GLib and GMime objects
// SUMMARY
//   Every GMime object the walker creates has exactly one owner: one of
//   these handles, which drops its reference (g_object_unref) or frees
//   its buffer (g_free) when it goes out of scope. Pointers that GMime
//   lends out ("transfer none") stay raw and are never wrapped.
#pragma once

#include <glib-object.h>

#include <memory>

namespace icapm {

// GObjectUnref - drop the one reference a GObjectPtr holds.
struct GObjectUnref {
    void operator()(gpointer p) const noexcept {
        if (p) g_object_unref(p);
    }
};

// GObjectPtr - owner of one reference to a GObject (GMimeStream, ...).
template <class T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

// adopt - wrap a reference returned with "transfer full" ownership.
template <class T>
GObjectPtr<T> adopt(T* p) noexcept {
    return GObjectPtr<T>(p);
}

// GFree - release memory that GLib allocated.
struct GFree {
    void operator()(gpointer p) const noexcept { g_free(p); }
};

// GCharPtr - owner of a g_malloc'd string.
using GCharPtr = std::unique_ptr<char, GFree>;

} // namespace icapm
