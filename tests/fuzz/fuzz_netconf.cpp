// SPDX-License-Identifier: Apache-2.0
// The network configuration a runtime passes on stdin (parseNetConf, parseRanges), the
// results it carries or a delegated IPAM plugin returns (resultFromJson), a delegated
// plugin's error document (errorFromJson), and the address parsers under all of them.
// Invariants: errors carry the codes the parsers document and serialise as the spec's error
// document; an accepted config, written back as JSON, parses to the same config; a result
// survives resultToJson -> resultFromJson in every version; numbers are taken as given.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sluice/cni/config.h"
#include "sluice/cni/types.h"
#include "sluice/cni/version.h"
#include "sluice/net/ip.h"

namespace {

using nlohmann::json;
using sluice::CniCode;
using namespace sluice;
using namespace sluice::cni;

json rangesToJson(const std::vector<RangeSet>& sets) {
  json out = json::array();
  for (const auto& set : sets) {
    json js = json::array();
    for (const auto& r : set) {
      json jr = {{"subnet", r.subnet.str()}, {"rangeStart", r.start.str()}, {"rangeEnd", r.end.str()}};
      if (r.gateway) jr["gateway"] = r.gateway->str();
      js.push_back(std::move(jr));
    }
    out.push_back(std::move(js));
  }
  return out;
}

// Everything parseNetConf keeps, written back in the format it reads.
json netConfToJson(const NetConf& c) {
  json j = {{"cniVersion", c.cniVersion}, {"name", c.name},         {"type", c.type},
            {"mtu", c.mtu},               {"bpfRoot", c.bpfRoot},   {"stateDir", c.stateDir},
            {"logLevel", c.logLevel},     {"runtimeConfig", c.runtimeConfig},
            {"capabilities", c.capabilities}};
  if (!c.logFile.empty()) j["logFile"] = c.logFile;
  if (c.ipam) {
    json ipam = {{"type", c.ipam->type}};
    if (c.ipam->builtin()) ipam["ranges"] = rangesToJson(c.ipam->ranges);
    j["ipam"] = std::move(ipam);
  }
  if (!c.dns.empty()) j["dns"] = dnsToJson(c.dns);
  if (c.prevResult) j["prevResult"] = *c.prevResult;
  if (c.validAttachments) {
    json va = json::array();
    for (const auto& a : *c.validAttachments) va.push_back({{"containerID", a.containerId}, {"ifname", a.ifname}});
    j[kValidAttachmentsKey] = std::move(va);
  }
  return j;
}

bool sameConf(const NetConf& a, const NetConf& b) {
  auto ipamEq = [](const std::optional<IpamConfig>& x, const std::optional<IpamConfig>& y) {
    if (x.has_value() != y.has_value()) return false;
    return !x || (x->type == y->type && x->ranges == y->ranges);
  };
  return a.cniVersion == b.cniVersion && a.name == b.name && a.type == b.type && a.mtu == b.mtu &&
         a.bpfRoot == b.bpfRoot && a.stateDir == b.stateDir && a.logFile == b.logFile &&
         a.logLevel == b.logLevel && ipamEq(a.ipam, b.ipam) && a.dns == b.dns &&
         a.prevResult == b.prevResult && a.runtimeConfig == b.runtimeConfig &&
         a.capabilities == b.capabilities && a.validAttachments == b.validAttachments;
}

void checkErrorDocument(const Error& e, std::string_view version) {
  std::string doc;
  try {
    doc = errorToJson(e, version).dump();
  } catch (const json::exception& ex) {
    sluice::fuzz::fail(__FILE__, __LINE__, "the error document serialises",
                       std::string(ex.what()) + " for " + sluice::fuzz::show(e.message()));
  }
  auto back = errorFromJson(doc);
  SL_FUZZ_CHECK(back.has_value(), "our own error document does not parse back: " + doc);
  SL_FUZZ_CHECK(back->code() == e.code(), doc);
}

// Two ranges overlap when their [start, end] intervals of one family intersect.
bool overlaps(const IpRange& a, const IpRange& b) {
  return a.start.family() == b.start.family() && !(a.end < b.start) && !(b.end < a.start);
}

void checkRanges(const std::vector<RangeSet>& sets) {
  std::vector<const IpRange*> all;
  for (const auto& set : sets) {
    SL_FUZZ_CHECK(!set.empty(), "an empty range set was accepted");
    for (const auto& r : set) {
      SL_FUZZ_CHECK(r.subnet == r.subnet.network(), "subnet not canonical: " + r.subnet.str());
      SL_FUZZ_CHECK(r.subnet.contains(r.start) && r.subnet.contains(r.end),
                    r.start.str() + "-" + r.end.str() + " outside " + r.subnet.str());
      SL_FUZZ_CHECK(!(r.end < r.start), r.start.str() + "-" + r.end.str());
      SL_FUZZ_CHECK(!r.gateway || r.gateway->family() == r.subnet.addr().family(), r.subnet.str());
      SL_FUZZ_CHECK(r.start.family() == set.front().start.family(), "mixed families in one set");
      for (const IpRange* o : all)
        SL_FUZZ_CHECK(!overlaps(*o, r), "overlapping ranges accepted: " + o->subnet.str() + " " + r.subnet.str());
      all.push_back(&r);
    }
  }
}

// The numbers a result gives (interface index, MTU) are the numbers we keep.
void checkResultNumbers(const json& in, const CniResult& r) {
  if (auto ifs = in.find("interfaces"); ifs != in.end() && ifs->is_array())
    for (size_t i = 0; i < ifs->size() && i < r.interfaces.size(); ++i)
      if (auto m = (*ifs)[i].find("mtu"); m != (*ifs)[i].end() && !m->is_null())
        SL_FUZZ_CHECK(r.interfaces[i].mtu && json(*r.interfaces[i].mtu) == *m,
                      "interfaces[" + std::to_string(i) + "].mtu " + m->dump() + " kept as " +
                          (r.interfaces[i].mtu ? std::to_string(*r.interfaces[i].mtu) : "nothing"));
  if (auto ips = in.find("ips"); ips != in.end() && ips->is_array())
    for (size_t i = 0; i < ips->size() && i < r.ips.size(); ++i)
      if (auto x = (*ips)[i].find("interface"); x != (*ips)[i].end() && !x->is_null())
        SL_FUZZ_CHECK(r.ips[i].interface && json(*r.ips[i].interface) == *x &&
                          *r.ips[i].interface < static_cast<int>(r.interfaces.size()),
                      "ips[" + std::to_string(i) + "].interface " + x->dump() + " kept as " +
                          (r.ips[i].interface ? std::to_string(*r.ips[i].interface) : "nothing"));
}

void checkResult(const json& in, const std::string& where) {
  auto r = resultFromJson(in, where);
  if (!r.ok()) {
    SL_FUZZ_CHECK_ERROR(r.error(), CniCode::kInvalidConfig);
    SL_FUZZ_CHECK(r.error().message().rfind(where, 0) == 0,
                  "the message does not name the field under '" + where + "': " + r.error().message());
    return;
  }
  checkResultNumbers(in, *r);
  for (std::string_view v : kSupportedVersions) {
    json out = resultToJson(*r, v);
    std::string text;
    try {
      text = out.dump();
    } catch (const json::exception& ex) {
      sluice::fuzz::fail(__FILE__, __LINE__, "a parsed result serialises", ex.what());
    }
    auto back = resultFromJson(json::parse(text), "roundtrip");
    SL_FUZZ_CHECK(back.ok(), std::string(v) + ": " + (back.ok() ? "" : back.error().message()) + " for " + text);
    CniResult expect = *r;
    if (!versionAtLeast(v, "1.1.0"))
      for (auto& i : expect.interfaces) i.mtu.reset();  // 1.1.0 added interfaces[].mtu
    SL_FUZZ_CHECK(*back == expect, std::string(v) + ": round trip changed the result: " + text);
  }
}

void checkIpParsers(std::string_view s) {
  auto ip = net::IpAddr::parse(s);
  // Reference: the whole string is one address for inet_pton (no embedded NUL cut-off).
  const std::string str(s);
  unsigned char buf[16];
  const bool expect = str.find('\0') == std::string::npos &&
                      (inet_pton(AF_INET, str.c_str(), buf) == 1 || inet_pton(AF_INET6, str.c_str(), buf) == 1);
  SL_FUZZ_CHECK(ip.has_value() == expect, "IpAddr::parse(\"" + sluice::fuzz::show(s) + "\") = " +
                                              (ip ? ip->str() : "nothing"));
  if (ip) SL_FUZZ_CHECK(net::IpAddr::parse(ip->str()) == ip, ip->str());
  auto c = net::Cidr::parse(s);
  if (c) {
    SL_FUZZ_CHECK(c->prefix() >= 0 && c->prefix() <= c->addr().bits(), c->str());
    SL_FUZZ_CHECK(net::Cidr::parse(c->str()) == c, c->str());
    SL_FUZZ_CHECK(net::IpAddr::parse(s.substr(0, s.find('/'))).has_value(), sluice::fuzz::show(s));
    const net::Cidr n = c->network();
    SL_FUZZ_CHECK(n.contains(c->addr()) && n.contains(c->broadcast()) && c->contains(n), c->str());
    SL_FUZZ_CHECK(!(c->broadcast() < n.addr()), c->str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (size <= 64) checkIpParsers(in);

  const std::string peeked = peekVersion(in);
  auto conf = parseNetConf(in);
  if (!conf.ok()) {
    SL_FUZZ_CHECK_ERROR(conf.error(), CniCode::kDecodeFailure, CniCode::kIncompatibleVersion,
                        CniCode::kInvalidConfig);
    checkErrorDocument(conf.error(), versionSupported(peeked) ? peeked : std::string(kLatestVersion));
  } else {
    const NetConf& c = *conf;
    SL_FUZZ_CHECK(c.raw == in, "raw bytes not kept");
    SL_FUZZ_CHECK(peeked == c.cniVersion, peeked + " vs " + c.cniVersion);
    SL_FUZZ_CHECK(versionSupported(c.cniVersion), c.cniVersion);
    SL_FUZZ_CHECK(c.mtu >= 68 && c.mtu <= 65535, std::to_string(c.mtu));
    SL_FUZZ_CHECK(!c.bpfRoot.empty() && c.bpfRoot[0] == '/' && !c.stateDir.empty() && c.stateDir[0] == '/',
                  c.bpfRoot + " " + c.stateDir);
    if (c.ipam && c.ipam->builtin()) checkRanges(c.ipam->ranges);
    if (c.ipam) SL_FUZZ_CHECK(!c.ipam->type.empty() && c.ipam->type.find('/') == std::string::npos, c.ipam->type);

    const std::string again = netConfToJson(c).dump();
    auto re = parseNetConf(again);
    SL_FUZZ_CHECK(re.ok(), "the config written back does not parse: " +
                               (re.ok() ? std::string() : re.error().message()) + "\n  " + again);
    SL_FUZZ_CHECK(sameConf(c, *re), "the config written back parses differently: " + again);

    if (c.prevResult) checkResult(*c.prevResult, "prevResult");
  }

  // The same bytes as a delegated IPAM plugin's answer, or its error document.
  json doc = json::parse(in, nullptr, false);
  if (doc.is_object()) checkResult(doc, "ipam result");
  if (auto e = errorFromJson(in)) {
    SL_FUZZ_CHECK(doc.is_object() && json(static_cast<uint32_t>(e->code())) == doc["code"], doc.dump());
    checkErrorDocument(*e, kLatestVersion);
  }
  return 0;
}
