// NAME
//   ctl.cpp - icap-milterctl: the operator's command line tool
// SUMMARY
//   icap-milterctl keygen OUT            write OUT.key (0600) and OUT.pub
//   icap-milterctl token decode [TOKEN|FILE.eml]
//   icap-milterctl token verify FILE.eml [-c CONF] [--scan-version SIG]
//   icap-milterctl mime FILE.eml [-c CONF]   how the milter reads a message
//   icap-milterctl [-c CONF] quarantine list|show|export|release|delete|purge ...
//   icap-milterctl [-c CONF] [-s SOCKET] stats|health|queue [--json] | reload | loglevel LEVEL
//   keygen makes an Ed25519 pair for TokenSigningKey / TrustedKeysDirectory.
//   decode prints a token's header and claims (no trust implied). verify
//   runs the milter's own verification offline: the keys from the config,
//   the current scanner signature (asked from the configured scanners
//   unless --scan-version is given) and the parts hash of the message.
//   quarantine manages held messages (see quarantine_cmd.cpp). The
//   control commands ask the running daemon (see control_cmd.cpp): exit
//   status 0 it answered, 1 it answered an error, 3 no answer.
// DIAGNOSTICS
//   Exit status: 0 success (verify: the token is valid), 1 the token
//   fails (the reason is printed), 2 usage, 3 a file, key or config
//   problem. Private key bytes never go to stdout or stderr.
#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/config/config.hpp"
#include "icap-milter/config/paths.hpp"
#include "icap-milter/log/log.hpp"
#include "icap-milter/milter/end_of_message.hpp"
#include "icap-milter/mime/walker.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/token/base64url.hpp"
#include "icap-milter/token/keys.hpp"
#include "icap-milter/token/token.hpp"
#include "control_cmd.hpp"
#include "quarantine_cmd.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kMaxMessage = 256u << 20;

// usage - the synopsis, as in icap-milterctl(8).
int usage(std::FILE* out, int status) {
    std::fprintf(out,
                 "usage: icap-milterctl keygen OUT\n"
                 "       icap-milterctl token decode [TOKEN|FILE.eml] [--header NAME]\n"
                 "       icap-milterctl token verify FILE.eml [-c CONF] [--scan-version SIG]\n"
                 "       icap-milterctl mime FILE.eml [-c CONF]\n"
                 "       icap-milterctl [-c CONF] quarantine list [--since DUR|DATE] [--virus S] [--rcpt S] [--json]\n"
                 "       icap-milterctl [-c CONF] quarantine show|export|delete ID\n"
                 "       icap-milterctl [-c CONF] quarantine release ID [--to ADDR ...]\n"
                 "       icap-milterctl [-c CONF] quarantine purge --older-than DUR\n"
                 "  (quarantine commands also take --dir DIR and --sendmail CMD)\n"
                 "       icap-milterctl [-c CONF] [-s SOCKET] stats|health|queue [--json]\n"
                 "       icap-milterctl [-c CONF] [-s SOCKET] reload\n"
                 "       icap-milterctl [-c CONF] [-s SOCKET] loglevel debug|info|notice|warning|error\n"
                 "  (these ask the running daemon over its ControlSocket)\n"
                 "  keygen writes OUT.key (mode 0600, for TokenSigningKey) and OUT.pub (for the\n"
                 "  TrustedKeysDirectory of other servers) and prints the key's thumbprint.\n");
    return status;
}

// write_file - create path exclusively with mode, write text; throws.
void write_file(const std::string& path, const std::string& text, mode_t mode) {
    icapm::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) throw std::runtime_error(path + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(path + ": write: " + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0 || ::close(fd.release()) != 0)
        throw std::runtime_error(path + ": " + std::strerror(errno));
}

// read_file - a whole file, bounded; throws.
std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": " + std::strerror(errno));
    std::string out;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        out.append(buf, static_cast<std::size_t>(in.gcount()));
        if (out.size() > kMaxMessage) throw std::runtime_error(path + ": too large");
    }
    return out;
}

// to_crlf - LF line ends to CRLF (the milter spools CRLF); CRLF stays.
std::string to_crlf(const std::string& raw) {
    std::string out;
    out.reserve(raw.size() + raw.size() / 40);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) out += '\r';
        out += raw[i];
    }
    return out;
}

// header_values - unfolded values of every header field named name
// (case-insensitive) in the message's header section.
std::vector<std::string> header_values(const std::string& raw, const std::string& name) {
    std::vector<std::string> out;
    std::size_t end = raw.find("\r\n\r\n");
    std::string head = raw.substr(0, end == std::string::npos ? raw.size() : end + 2);
    std::vector<std::string> fields;
    std::size_t pos = 0;
    while (pos < head.size()) {
        std::size_t nl = head.find("\r\n", pos);
        if (nl == std::string::npos) nl = head.size();
        std::string line = head.substr(pos, nl - pos);
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !fields.empty())
            fields.back() += "\n" + line;
        else
            fields.push_back(line);
        pos = nl + 2;
    }
    for (const auto& f : fields) {
        auto colon = f.find(':');
        if (colon == std::string::npos || colon != name.size()) continue;
        if (strncasecmp(f.c_str(), name.c_str(), name.size()) != 0) continue;
        out.push_back(f.substr(colon + 1));
    }
    return out;
}

// keygen - a fresh pair; refuses to overwrite.
int keygen(const std::string& out) {
    icapm::SigningKey key = icapm::SigningKey::generate();
    icapm::SecretString pem = key.private_pem();
    ::umask(077);
    write_file(out + ".key", pem.str(), 0600);
    write_file(out + ".pub", key.public_key().pem(), 0644);
    std::printf("private key: %s.key (mode 0600: TokenSigningKey)\n", out.c_str());
    std::printf("public key:  %s.pub (copy to other servers' TrustedKeysDirectory)\n", out.c_str());
    std::printf("thumbprint:  %s\n", key.public_key().thumbprint().c_str());
    return 0;
}

// print_json - pretty JSON, or the raw text when it does not parse.
void print_json(const char* label, const std::string& text) {
    std::printf("%s:\n", label);
    try {
        std::printf("%s\n", nlohmann::json::parse(text).dump(2).c_str());
    } catch (const std::exception&) {
        std::printf("  (not JSON) %s\n", text.substr(0, 400).c_str());
    }
}

// decode - print header and claims of a token (signature not checked).
int decode(const std::string& arg, const std::string& header_name) {
    std::string token = arg;
    struct stat st {};
    if (arg.empty() || (::stat(arg.c_str(), &st) == 0 && S_ISREG(st.st_mode))) {
        std::string raw;
        if (arg.empty()) {
            std::ostringstream ss;
            ss << std::cin.rdbuf();
            raw = ss.str();
        } else {
            raw = read_file(arg);
        }
        auto values = header_values(to_crlf(raw), header_name);
        if (values.empty()) {
            // stdin may hold a bare token rather than a message
            if (arg.empty() && raw.find(':') == std::string::npos) {
                values.push_back(raw);
            } else {
                std::fprintf(stderr, "icap-milterctl: no %s header in %s\n", header_name.c_str(),
                             arg.empty() ? "stdin" : arg.c_str());
                return 1;
            }
        }
        if (values.size() > 1) std::printf("warning: %zu %s headers (a milter rejects them all)\n", values.size(),
                                           header_name.c_str());
        token = values.front();
    }
    token = icapm::unfold_token(token);
    std::vector<std::string> seg;
    std::size_t pos = 0;
    while (true) {
        auto dot = token.find('.', pos);
        seg.push_back(token.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos));
        if (dot == std::string::npos || seg.size() > 3) break;
        pos = dot + 1;
    }
    for (std::size_t i = 0; i < seg.size() && i < 2; ++i) {
        auto text = icapm::base64url_decode(seg[i]);
        if (text)
            print_json(i == 0 ? "header" : "claims", *text);
        else
            std::printf("%s: not strict base64url\n", i == 0 ? "header" : "claims");
    }
    if (seg.size() >= 3) {
        auto sig = icapm::base64url_decode(seg[2]);
        std::printf("signature: %zu bytes%s\n", sig ? sig->size() : 0, sig ? "" : " (not strict base64url)");
    }
    std::string reason, detail;
    auto dec = icapm::decode_token(token, &reason, &detail);
    if (dec) {
        auto when = [](std::int64_t t) {
            std::time_t tt = static_cast<std::time_t>(t);
            char buf[64] = "?";
            if (std::tm tm{}; gmtime_r(&tt, &tm)) std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
            return std::string(buf);
        };
        std::printf("created: %s\nexpires: %s\n", when(dec->claims.created).c_str(),
                    when(dec->claims.expires).c_str());
        std::printf("structure: ok (signature, keys, scanner and parts NOT checked; use token verify)\n");
        return 0;
    }
    std::printf("structure: invalid (%s: %s)\n", reason.c_str(), detail.c_str());
    return 1;
}

// verify_keys - the config's keys; without access to the private key,
// its OUT.pub neighbour (as keygen writes it) stands in for it.
icapm::TokenKeys verify_keys(const icapm::Config& config) {
    try {
        return icapm::load_token_keys(config);
    } catch (const std::exception& e) {
        if (config.token_signing_key.empty()) throw;
        std::string pub = config.token_signing_key;
        if (pub.size() > 4 && pub.ends_with(".key")) pub.resize(pub.size() - 4);
        pub += ".pub";
        std::fprintf(stderr, "note: %s; using %s as the own public key\n", e.what(), pub.c_str());
        icapm::Config without = config;
        without.token_signing_key.clear();
        icapm::TokenKeys keys = icapm::load_token_keys(without);
        auto store = std::make_shared<icapm::KeyStore>(*keys.trusted);
        store->add(std::make_shared<const icapm::PublicKey>(icapm::PublicKey::from_pem(read_file(pub), pub)));
        keys.trusted = std::move(store);
        return keys;
    }
}

// limits_of - the walker limits the milter uses with config; temp files
// in /tmp (TempDirectory may belong to the milter's User).
icapm::WalkLimits limits_of(const icapm::Config& config) {
    icapm::WalkLimits limits = icapm::walk_limits(config);
    limits.temp_dir = "/tmp";
    return limits;
}

// mime - the walker's reading of a message, as the milter would scan it:
// structure (hashable, suspect, ambiguous with the reasons) and items.
int mime(const std::string& file, const std::string& conf) {
    icapm::Config defaults;
    std::shared_ptr<const icapm::Config> config;
    if (!conf.empty()) {
        std::vector<icapm::ConfigError> errors;
        config = icapm::load_config(conf, errors);
        if (!config) {
            for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
            return 3;
        }
    }
    icapm::Spool spool("/tmp", 1u << 20);
    spool.append(to_crlf(read_file(file)));
    icapm::WalkResult walk = icapm::walk_message(spool, limits_of(config ? *config : defaults));
    // Names come from the message: escaped for the terminal.
    std::string report = icapm::walk_report(walk);
    for (std::size_t start = 0; start < report.size();) {
        std::size_t nl = report.find('\n', start);
        std::printf("%s\n", icapm::sanitize(report.substr(start, nl - start), 2000).c_str());
        start = nl == std::string::npos ? report.size() : nl + 1;
    }
    return 0;
}

// verify - the milter's verification, offline, with the reason on failure.
int verify(const std::string& file, const std::string& conf, const std::string& scan_version) {
    std::vector<icapm::ConfigError> errors;
    auto config = icapm::load_config(conf, errors);
    if (!config) {
        for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
        return 3;
    }
    icapm::TokenKeys keys = verify_keys(*config);
    const std::string raw = to_crlf(read_file(file));
    auto values = header_values(raw, config->token_header);
    icapm::Spool spool("/tmp", 1u << 20);
    spool.append(raw);
    icapm::WalkResult walk = icapm::walk_message(spool, limits_of(*config));
    icapm::VerifyInput in;
    in.keys = keys.trusted.get();
    in.verification_hash = icapm::parts_hash(walk);
    in.now = static_cast<std::int64_t>(std::time(nullptr));
    in.skew = std::chrono::duration_cast<std::chrono::seconds>(config->token_clock_skew).count();
    if (!scan_version.empty()) {
        in.scan_versions = {scan_version};
    } else if (values.size() == 1) {
        // Only the ISTags are wanted here: no canaries are sent to the scanners.
        auto asking = std::make_shared<icapm::Config>(*config);
        asking->scanner_self_test = false;
        icapm::Scanner scanner(asking);
        in.scan_versions = scanner.signatures();
    }
    std::printf("message: %zu part(s), parts hash %s\n", walk.items.size(), in.verification_hash.c_str());
    std::printf("trusted keys: %zu; scanner signature(s):", keys.trusted ? keys.trusted->size() : 0);
    for (const auto& v : in.scan_versions) std::printf(" \"%s\"", v.c_str());
    std::printf("%s\n", in.scan_versions.empty() ? " none (no scanner answered)" : "");
    if (!walk.hashable()) {
        std::string why = walk.ambiguous() ? walk.ambiguity() : walk.suspects.front();
        std::printf("FAIL %s: the message cannot be hashed reliably (%s)\n",
                    walk.limit_hit ? "mime-limit" : "ambiguous-mime", why.c_str());
        return 1;
    }
    auto r = icapm::verify_token_headers(values, in);
    if (!r.ok) {
        std::printf("FAIL %s: %s\n", r.reason.c_str(), r.detail.c_str());
        return 1;
    }
    std::printf("OK signer=%s server=%s scanVersion=\"%s\": the milter would skip scanning\n",
                r.claims.key_thumbprint.c_str(), r.claims.server.c_str(), r.claims.scan_version.c_str());
    return 0;
}

// raw_control_socket - the ControlSocket line of a config file that does
// not load (else the built-in default); "" when the file cannot be read.
std::string raw_control_socket(const std::string& conf) {
    std::ifstream in(conf);
    if (!in) return {};
    std::string line, found = icapm::Config{}.control_socket;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key, value;
        if (!(words >> key) || key != "ControlSocket") continue;
        words >> value;
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        found = value;
    }
    return found;
}

// control - stats|health|queue|reload|loglevel over ControlSocket: -s
// wins, else the config's (-c, or the default file when it exists), else
// the built-in default path.
int control(const std::vector<std::string>& args, const std::string& conf_given, const std::string& socket_given) {
    std::string path = socket_given;
    if (path.empty()) {
        const std::string conf = conf_given.empty() ? icapm::paths::config_file() : conf_given;
        if (!conf_given.empty() || ::access(conf.c_str(), R_OK) == 0) {
            std::vector<icapm::ConfigError> errors;
            auto config = icapm::load_config(conf, errors);
            if (config) {
                path = config->control_socket;
            } else {
                // A broken file is what "reload" is about to be refused for:
                // say so, and still find the socket, so the daemon answers.
                for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
                path = raw_control_socket(conf);
                if (path.empty()) return 3;
            }
            if (path.empty()) {
                std::fprintf(stderr, "icap-milterctl: ControlSocket is empty (off) in %s\n", conf.c_str());
                return 3;
            }
        } else {
            path = icapm::Config{}.control_socket;
        }
    }
    std::fflush(stdout);
    return icapm::control_command(args, path, std::cout, std::cerr);
}

} // namespace

// main - dispatch the subcommands.
int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.empty()) return usage(stderr, 2);
        if (args[0] == "-h" || args[0] == "--help") return usage(stdout, 0);
        std::string quarantine_conf, control_socket;
        while (args.size() >= 2 && (args[0] == "-c" || args[0] == "--config" || args[0] == "-s" || args[0] == "--socket")) {
            (args[0] == "-s" || args[0] == "--socket" ? control_socket : quarantine_conf) = args[1];
            args.erase(args.begin(), args.begin() + 2);
        }
        if (args.empty()) return usage(stderr, 2);
        if (icapm::is_control_command(args[0])) return control(args, quarantine_conf, control_socket);
        if (!control_socket.empty() || (!quarantine_conf.empty() && args[0] != "quarantine")) return usage(stderr, 2);
        if (args[0] == "quarantine") {
            // QuarantineDirectory and SendmailCommand from the config (-c,
            // or the default one when it exists); --dir and --sendmail win.
            icapm::QuarantineSettings settings;
            std::string conf = quarantine_conf.empty() ? icapm::paths::config_file() : quarantine_conf;
            if (!quarantine_conf.empty() || ::access(conf.c_str(), R_OK) == 0) {
                std::vector<icapm::ConfigError> errors;
                auto config = icapm::load_config(conf, errors);
                if (!config) {
                    for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
                    return 3;
                }
                settings.dir = config->quarantine_directory;
                settings.sendmail = config->sendmail_command;
            }
            std::fflush(stdout);
            return icapm::quarantine_command({args.begin() + 1, args.end()}, settings, std::cout, std::cerr);
        }
        if (args[0] == "keygen") {
            if (args.size() != 2 || args[1].empty()) return usage(stderr, 2);
            return keygen(args[1]);
        }
        if (args[0] == "mime" && (args.size() == 2 || (args.size() == 4 && (args[2] == "-c" || args[2] == "--config"))))
            return mime(args[1], args.size() == 4 ? args[3] : std::string());
        if (args[0] == "token" && args.size() >= 2) {
            std::string conf = icapm::paths::config_file(), scan_version, header = "X-Scan-Token", target;
            bool conf_given = false;
            for (std::size_t i = 2; i < args.size(); ++i) {
                if ((args[i] == "-c" || args[i] == "--config") && i + 1 < args.size()) {
                    conf = args[++i];
                    conf_given = true;
                } else if (args[i] == "--scan-version" && i + 1 < args.size()) {
                    scan_version = args[++i];
                } else if (args[i] == "--header" && i + 1 < args.size()) {
                    header = args[++i];
                } else if (target.empty() && !args[i].starts_with("-")) {
                    target = args[i];
                } else {
                    return usage(stderr, 2);
                }
            }
            if (args[1] == "decode") {
                if (conf_given) {
                    std::vector<icapm::ConfigError> errors;
                    if (auto c = icapm::load_config(conf, errors)) header = c->token_header;
                }
                return decode(target, header);
            }
            if (args[1] == "verify" && !target.empty()) return verify(target, conf, scan_version);
        }
        return usage(stderr, 2);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "icap-milterctl: %s\n", e.what());
        return 3;
    }
}
