// SPDX-License-Identifier: Apache-2.0
#include "k8s_config.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "k8s_yaml.h"

namespace sluice::agent {
namespace {

using nlohmann::json;

Error configError(const std::string& msg) { return Error(CniCode::kInvalidConfig, msg); }

std::string trimWhitespace(std::string s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool isAllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string joinPath(const std::string& dir, const std::string& path) {
  if (path.empty() || path.front() == '/' || dir.empty()) return path;
  return dir.back() == '/' ? dir + path : dir + "/" + path;
}

// A string field of a kubeconfig object; empty when absent or null.
Result<std::string> stringField(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return configError(where + "." + key + " must be a string");
  return it->get<std::string>();
}

// Accepts true/false and (as some generators write them) "true"/"false".
Result<bool> boolField(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string() && (*it == "true" || *it == "false")) return *it == "true";
  return configError(where + "." + key + " must be a boolean");
}

// Finds {name: <name>, <field>: {...}} in a kubeconfig list and returns the inner object.
Result<json> namedEntry(const json& doc, const char* list, const char* field, const std::string& name) {
  auto it = doc.find(list);
  if (it == doc.end() || it->is_null()) return configError(std::string("kubeconfig has no ") + list);
  if (!it->is_array()) return configError(std::string("kubeconfig ") + list + " must be a list");
  for (const json& entry : *it) {
    if (!entry.is_object()) return configError(std::string("kubeconfig ") + list + " entries must be mappings");
    auto n = entry.find("name");
    if (n == entry.end() || !n->is_string() || n->get<std::string>() != name) continue;
    auto inner = entry.find(field);
    if (inner == entry.end() || inner->is_null()) return json::object();
    if (!inner->is_object()) return configError(std::string("kubeconfig ") + list + " '" + name + "': " + field + " must be a mapping");
    return *inner;
  }
  return configError(std::string("kubeconfig: ") + field + " '" + name + "' not found in " + list);
}

// "<x>" and "<x>-data" are alternatives; -data is base64 of the PEM itself.
Status pemSource(const json& obj, const char* fileKey, const char* dataKey, const std::string& where,
                 const std::string& baseDir, std::string& file, std::string& data) {
  SL_ASSIGN_OR_RETURN(std::string f, stringField(obj, fileKey, where));
  SL_ASSIGN_OR_RETURN(std::string d, stringField(obj, dataKey, where));
  if (!d.empty()) {
    auto decoded = decodeBase64(d);
    if (!decoded.ok()) return std::move(decoded).error().context(where + "." + dataKey);
    data = std::move(decoded).value();
    file.clear();  // kubectl: the inline data wins over the file
  } else if (!f.empty()) {
    file = joinPath(baseDir, f);
  }
  return okStatus();
}

Status checkPem(const std::string& pem, const std::string& what, const char* marker) {
  if (pem.find(marker) == std::string::npos)
    return configError(what + " is not PEM (no '" + marker + "')");
  return okStatus();
}

Status checkPemFile(const std::string& path, const std::string& what, const char* marker) {
  auto content = readFileToString(path);
  if (!content.ok()) return std::move(content).error().context(what);
  return checkPem(content.value(), what + " " + path, marker);
}

}  // namespace

std::string ClusterConfig::caDescription() const {
  if (insecureSkipTlsVerify) return "no verification (insecure-skip-tls-verify)";
  if (!caData.empty()) return "CA data from " + origin;
  if (!caFile.empty()) return "CA file " + caFile;
  return "the system CA store";
}

Result<std::string> readFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::fromErrno(errno, "cannot read " + path, CniCode::kInvalidConfig);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error::fromErrno(errno, "cannot read " + path, CniCode::kInvalidConfig);
  return ss.str();
}

Result<std::string> decodeBase64(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') {
      ++pad;
      continue;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return Error(CniCode::kDecodeFailure, std::string("invalid base64 character '") + c + "'");
    }
    if (pad) return Error(CniCode::kDecodeFailure, "invalid base64: data after '='");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero padding of a whole number of 4-character groups.
  if (bits >= 6 || pad > 2 || (acc & ((1u << bits) - 1)) != 0)
    return Error(CniCode::kDecodeFailure, "invalid base64: truncated input");
  return out;
}

Result<ClusterConfig> loadInClusterConfig(const std::string& serviceAccountDir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return configError(
        "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are "
        "unset (pass --kubeconfig)");
  if (!isAllDigits(port)) return configError(std::string("KUBERNETES_SERVICE_PORT is not a port: ") + port);
  ClusterConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";  // IPv6 literal
  cfg.server = "https://" + h + ":" + port;
  cfg.tokenFile = joinPath(serviceAccountDir, "token");
  cfg.caFile = joinPath(serviceAccountDir, "ca.crt");
  cfg.origin = "in-cluster service account " + serviceAccountDir;
  SL_TRY(validateClusterConfig(cfg));
  return cfg;
}

Result<ClusterConfig> parseKubeconfig(std::string_view text, const std::string& baseDir,
                                      const std::string& contextOverride) {
  json doc;
  std::string_view t = text;
  while (!t.empty() && (t.front() == ' ' || t.front() == '\n' || t.front() == '\r' || t.front() == '\t'))
    t.remove_prefix(1);
  if (!t.empty() && t.front() == '{') {
    doc = json::parse(t, nullptr, false);
    if (doc.is_discarded()) return Error(CniCode::kDecodeFailure, "kubeconfig: invalid JSON");
  } else {
    auto y = parseYamlSubset(text);
    if (!y.ok()) return std::move(y).error().context("kubeconfig");
    doc = std::move(y).value();
  }
  if (!doc.is_object()) return configError("kubeconfig is not a mapping");

  std::string contextName = contextOverride;
  if (contextName.empty()) {
    SL_ASSIGN_OR_RETURN(contextName, stringField(doc, "current-context", "kubeconfig"));
    if (contextName.empty()) return configError("kubeconfig has no current-context");
  }
  SL_ASSIGN_OR_RETURN(json context, namedEntry(doc, "contexts", "context", contextName));
  const std::string ctxWhere = "context '" + contextName + "'";
  SL_ASSIGN_OR_RETURN(std::string clusterName, stringField(context, "cluster", ctxWhere));
  SL_ASSIGN_OR_RETURN(std::string userName, stringField(context, "user", ctxWhere));
  if (clusterName.empty()) return configError(ctxWhere + " names no cluster");

  ClusterConfig cfg;
  cfg.origin = "kubeconfig context " + contextName;
  SL_ASSIGN_OR_RETURN(json cluster, namedEntry(doc, "clusters", "cluster", clusterName));
  const std::string clWhere = "cluster '" + clusterName + "'";
  SL_ASSIGN_OR_RETURN(cfg.server, stringField(cluster, "server", clWhere));
  if (cfg.server.empty()) return configError(clWhere + " has no server");
  if (cfg.server.rfind("https://", 0) != 0)
    return configError(clWhere + " server '" + cfg.server + "' is not an https:// URL");
  while (cfg.server.size() > 8 && cfg.server.back() == '/') cfg.server.pop_back();
  SL_TRY(pemSource(cluster, "certificate-authority", "certificate-authority-data", clWhere, baseDir,
                   cfg.caFile, cfg.caData));
  SL_ASSIGN_OR_RETURN(cfg.insecureSkipTlsVerify, boolField(cluster, "insecure-skip-tls-verify", clWhere));
  if (cfg.insecureSkipTlsVerify && (!cfg.caFile.empty() || !cfg.caData.empty()))
    return configError(clWhere + ": a CA together with insecure-skip-tls-verify is not allowed");

  if (userName.empty()) return configError(ctxWhere + " names no user (credentials are required)");
  SL_ASSIGN_OR_RETURN(json user, namedEntry(doc, "users", "user", userName));
  const std::string usWhere = "user '" + userName + "'";
  for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
    auto it = user.find(unsupported);
    if (it != user.end() && !it->is_null())
      return configError(usWhere + ": '" + unsupported +
                         "' credentials are not supported (use token, tokenFile or a client certificate)");
  }
  SL_ASSIGN_OR_RETURN(cfg.token, stringField(user, "token", usWhere));
  SL_ASSIGN_OR_RETURN(std::string tokenFile, stringField(user, "tokenFile", usWhere));
  if (cfg.token.empty() && !tokenFile.empty()) cfg.tokenFile = joinPath(baseDir, tokenFile);
  SL_TRY(pemSource(user, "client-certificate", "client-certificate-data", usWhere, baseDir,
                   cfg.clientCertFile, cfg.clientCertData));
  SL_TRY(pemSource(user, "client-key", "client-key-data", usWhere, baseDir, cfg.clientKeyFile,
                   cfg.clientKeyData));
  const bool hasKey = !cfg.clientKeyFile.empty() || !cfg.clientKeyData.empty();
  if (cfg.hasClientCert() != hasKey)
    return configError(usWhere + ": a client certificate needs both a certificate and a key");
  if (!cfg.hasToken() && !cfg.hasClientCert())
    return configError(usWhere + " has no credentials (token, tokenFile or client certificate)");
  return cfg;
}

Result<ClusterConfig> loadKubeconfig(const std::string& path, const std::string& contextOverride) {
  auto text = readFileToString(path);
  if (!text.ok()) return std::move(text).error().context("kubeconfig");
  std::string dir;
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash == 0 ? 1 : slash);
  auto cfg = parseKubeconfig(text.value(), dir, contextOverride);
  if (!cfg.ok()) return std::move(cfg).error().context(path);
  cfg->origin = "kubeconfig " + path + " (" + cfg->origin + ")";
  SL_TRY(validateClusterConfig(cfg.value()));
  return cfg;
}

Status validateClusterConfig(const ClusterConfig& cfg) {
  static constexpr const char* kCert = "-----BEGIN CERTIFICATE-----";
  static constexpr const char* kKey = "PRIVATE KEY-----";
  if (!cfg.caData.empty()) SL_TRY(checkPem(cfg.caData, "certificate-authority-data", kCert));
  if (!cfg.caFile.empty()) SL_TRY(checkPemFile(cfg.caFile, "CA file", kCert));
  if (!cfg.clientCertData.empty()) SL_TRY(checkPem(cfg.clientCertData, "client-certificate-data", kCert));
  if (!cfg.clientCertFile.empty()) SL_TRY(checkPemFile(cfg.clientCertFile, "client certificate", kCert));
  if (!cfg.clientKeyData.empty()) SL_TRY(checkPem(cfg.clientKeyData, "client-key-data", kKey));
  if (!cfg.clientKeyFile.empty()) SL_TRY(checkPemFile(cfg.clientKeyFile, "client key", kKey));
  if (!cfg.tokenFile.empty()) {
    SL_ASSIGN_OR_RETURN(std::string token, currentBearerToken(cfg));
    if (token.empty()) return configError("token file " + cfg.tokenFile + " is empty");
  }
  return okStatus();
}

Result<std::string> currentBearerToken(const ClusterConfig& cfg) {
  if (!cfg.token.empty()) return cfg.token;
  if (cfg.tokenFile.empty()) return std::string();
  auto content = readFileToString(cfg.tokenFile);
  if (!content.ok()) return std::move(content).error().context("bearer token");
  return trimWhitespace(std::move(content).value());
}

}  // namespace sluice::agent
