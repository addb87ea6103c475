// NAME
//   test_tls_files.cpp - TLS files read ahead of the privilege drop
// SUMMARY
//   A TlsContext given a TlsFiles table takes the CA file, client
//   certificate and key from the preloaded table, so it works when the
//   paths can no longer be read. load_tls_files() keeps the old contents
//   of a file it may not read (EACCES, as after the privilege drop) and
//   warns naming it; other failures leave the path for the context to
//   report. Permission errors are simulated through the reader seam:
//   the tests run as root, who may read anything.
#include "icap-milter/config/config.hpp"
#include "icap-milter/milter/runtime.hpp"
#include "icap-milter/net/tls.hpp"

#include <doctest/doctest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

using namespace icapm;

namespace {

// pem_text - what a PEM writer callback produced, as a string.
template <typename Write>
std::string pem_text(Write write) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    REQUIRE(bio);
    REQUIRE(write(bio.get()) == 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// Identity - a self-signed P-256 certificate and its key, as PEM text.
struct Identity {
    std::string cert, key;
    Identity() {
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> k(EVP_EC_gen("P-256"), &EVP_PKEY_free);
        REQUIRE(k);
        std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), &X509_free);
        X509_set_version(x.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
        X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
        X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
        X509_set_pubkey(x.get(), k.get());
        X509_NAME* n = X509_get_subject_name(x.get());
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tls files"), -1,
                                   -1, 0);
        X509_set_issuer_name(x.get(), n);
        REQUIRE(X509_sign(x.get(), k.get(), EVP_sha256()) > 0);
        cert = pem_text([&](BIO* b) { return PEM_write_bio_X509(b, x.get()); });
        key = pem_text(
            [&](BIO* b) { return PEM_write_bio_PrivateKey(b, k.get(), nullptr, nullptr, 0, nullptr, nullptr); });
    }
};

// TempDir - a private directory, removed with its contents.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/icapm-test-tls-files-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    // write - a file in the directory with text; its path.
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name, std::ios::binary) << text;
        return (path / name).string();
    }
};

// CaptureLog - the default logger writes into a string for the test's life.
struct CaptureLog {
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> old = spdlog::default_logger();
    CaptureLog() {
        auto logger = std::make_shared<spdlog::logger>("capture",
                                                       std::make_shared<spdlog::sinks::ostream_sink_st>(out));
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);
    }
    ~CaptureLog() { spdlog::set_default_logger(old); }
};

// mtls - settings for mutual TLS with these files.
TlsSettings mtls(const std::string& ca, const std::string& cert, const std::string& key) {
    TlsSettings s;
    s.ca_file = ca;
    s.client_cert = cert;
    s.client_key = key;
    return s;
}

} // namespace

TEST_CASE("tls files: read_tls_file reads whole files and reports errno") {
    TempDir dir;
    const std::string p = dir.write("a.pem", "hello\n");
    CHECK(read_tls_file(p).contents == "hello\n");
    CHECK(read_tls_file(p).error == 0);
    CHECK(read_tls_file((dir.path / "missing.pem").string()).error == ENOENT);
    CHECK(read_tls_file(dir.path.string()).error == EISDIR);
}

TEST_CASE("tls files: a context takes preloaded contents when the paths are gone") {
    Identity ca, client;
    TempDir dir;
    const std::string ca_file = dir.write("ca.pem", ca.cert), cert_file = dir.write("client.pem", client.cert),
                      key_file = dir.write("client.key", client.key);
    CHECK_NOTHROW(TlsContext{mtls(ca_file, cert_file, key_file)}); // read from disk
    // With a client certificate no session is resumed (c-icap fails those).
    CHECK(TlsContext{mtls(ca_file, cert_file, key_file)}.client_cert());
    CHECK_FALSE(TlsContext{mtls(ca_file, "", "")}.client_cert());

    TlsFiles files;
    files.set(ca_file, ca.cert);
    files.set(cert_file, client.cert);
    files.set(key_file, client.key);
    std::filesystem::remove(key_file); // stands in for "not readable after the privilege drop"
    std::filesystem::remove(ca_file);
    CHECK_THROWS_AS(TlsContext{mtls(ca_file, cert_file, key_file)}, std::runtime_error);
    CHECK_NOTHROW(TlsContext(mtls(ca_file, cert_file, key_file), &files));
    CHECK_THROWS_AS(TlsContext{mtls(ca_file, cert_file, key_file)}, std::runtime_error); // without them

    // Preloaded contents are checked as files are: a key of another
    // certificate, or no certificate in the CA file, is an error.
    Identity other;
    files.set(key_file, other.key);
    CHECK_THROWS_AS(TlsContext(mtls(ca_file, cert_file, key_file), &files), std::runtime_error);
    files.set(key_file, client.key);
    files.set(ca_file, "not a certificate\n");
    CHECK_THROWS_AS(TlsContext(mtls(ca_file, cert_file, key_file), &files), std::runtime_error);
}

TEST_CASE("tls files: load_tls_files keeps unreadable files from before, with a warning") {
    Identity ca, client;
    TempDir dir;
    Config c;
    c.icap_servers = {"icaps://localhost:11344/avscan"};
    c.tls_ca_file = dir.write("ca.pem", ca.cert);
    c.tls_cert_file = dir.write("client.pem", client.cert);
    c.tls_key_file = dir.write("client.key", client.key);

    auto first = load_tls_files(c, nullptr); // at start, as root
    REQUIRE(first->size() == 3);
    CHECK(*first->find(c.tls_key_file) == client.key);

    // Reload: the key is refused (0600 root after the drop), the CA changed.
    Identity new_ca;
    dir.write("ca.pem", new_ca.cert);
    auto as_user = [&](const std::string& path) {
        if (path == c.tls_key_file) return TlsFileRead{{}, EACCES};
        return read_tls_file(path);
    };
    CaptureLog log;
    auto second = load_tls_files(c, first.get(), as_user);
    REQUIRE(second->size() == 3);
    CHECK(*second->find(c.tls_key_file) == client.key);  // kept
    CHECK(*second->find(c.tls_ca_file) == new_ca.cert);   // re-read
    const std::string text = log.out.str();
    CHECK(text.find("TlsKeyFile file=" + c.tls_key_file) != std::string::npos);
    CHECK(text.find("previously loaded contents stay in use") != std::string::npos);
    CHECK(text.find("TlsCAFile") == std::string::npos);

    // The kept contents build a working context while the path is refused.
    std::filesystem::remove(c.tls_key_file);
    CHECK_NOTHROW(TlsContext(mtls(c.tls_ca_file, c.tls_cert_file, c.tls_key_file), second.get()));

    // A file never read before, or gone (ENOENT), is not papered over.
    CHECK(load_tls_files(c, nullptr, as_user)->find(c.tls_key_file) == nullptr);
    CHECK(load_tls_files(c, first.get())->find(c.tls_key_file) == nullptr);
    // No icaps:// server: nothing is read.
    c.icap_servers = {"icap://127.0.0.1:1344/avscan"};
    CHECK(load_tls_files(c, nullptr)->size() == 0);
}
