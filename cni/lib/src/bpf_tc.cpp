// SPDX-License-Identifier: Apache-2.0
#include "sluice/bpf/tc.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "sluice/fd.h"
#include "sluice/log.h"

namespace sluice::bpf {
namespace {

// enum bpf_attach_type values of kernel 6.6+ (the build's linux-libc-dev 6.1 lacks them).
constexpr int kTcxIngress = 46;
constexpr int kTcxEgress = 47;
constexpr unsigned kFReplace = 1u << 2;  // BPF_F_REPLACE

int tcxType(bpf_tc_attach_point where) { return where == BPF_TC_INGRESS ? kTcxIngress : kTcxEgress; }

// Program ids attached through TCX at that hook, first to last; empty when none or no TCX.
std::vector<uint32_t> tcxProgIds(int ifindex, bpf_tc_attach_point where) {
  uint32_t ids[64] = {};
  uint32_t count = 64;
  uint32_t flags = 0;
  if (bpf_prog_query(ifindex, static_cast<bpf_attach_type>(tcxType(where)), 0, &flags, ids, &count) != 0)
    return {};
  return std::vector<uint32_t>(ids, ids + std::min<uint32_t>(count, 64));
}

bool isSluiceProg(uint32_t id, Fd* fdOut) {
  Fd fd(bpf_prog_get_fd_by_id(id));
  if (!fd.valid()) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return false;
  if (std::strncmp(info.name, "sl_", 3) != 0) return false;
  if (fdOut != nullptr) *fdOut = std::move(fd);
  return true;
}

// The Sluice program attached through TCX at that hook: its id (0 if none) and an fd to it.
uint32_t tcxSluiceProg(int ifindex, bpf_tc_attach_point where, Fd* fdOut) {
  for (uint32_t id : tcxProgIds(ifindex, where))
    if (isSluiceProg(id, fdOut)) return id;
  return 0;
}

Status tcxAttach(int ifindex, int progFd, bpf_tc_attach_point where) {
  Fd old;
  uint32_t oldId = tcxSluiceProg(ifindex, where, &old);
  struct bpf_prog_attach_opts opts {};
  opts.sz = sizeof(opts);
  if (oldId != 0) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(progFd, &info, &len) == 0 && info.id == oldId) return okStatus();
    opts.flags = kFReplace;
    opts.replace_prog_fd = old.get();
  }
  int err = bpf_prog_attach_opts(progFd, ifindex, static_cast<bpf_attach_type>(tcxType(where)), &opts);
  if (err)
    return Error::fromErrno(-err, std::string("attach TCX ") + (where == BPF_TC_INGRESS ? "ingress" : "egress") +
                                      " program on ifindex " + std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

Status tcxDetach(int ifindex, bpf_tc_attach_point where) {
  Fd fd;
  if (tcxSluiceProg(ifindex, where, &fd) == 0) return okStatus();
  int err = bpf_prog_detach2(fd.get(), ifindex, static_cast<bpf_attach_type>(tcxType(where)));
  if (err && err != -ENOENT && err != -ENODEV)
    return Error::fromErrno(-err, "detach TCX program from ifindex " + std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

bpf_tc_hook makeHook(int ifindex, bpf_tc_attach_point where) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = where;
  return hook;
}

bpf_tc_opts makeOpts() {
  bpf_tc_opts o{};
  o.sz = sizeof(o);
  o.handle = kTcHandle;
  o.priority = kTcPriority;
  return o;
}

const char* whereName(bpf_tc_attach_point where) { return where == BPF_TC_INGRESS ? "ingress" : "egress"; }

// The clsact qdisc for the given attach point(s); one that exists is fine.
Status createClsact(int ifindex, bpf_tc_attach_point where) {
  bpf_tc_hook hook = makeHook(ifindex, where);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    return Error::fromErrno(err, "create clsact qdisc on ifindex " + std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

// progFd at the clsact slot, which exists.
Status attachFilter(int ifindex, int progFd, bpf_tc_attach_point where) {
  bpf_tc_hook hook = makeHook(ifindex, where);
  bpf_tc_opts opts = makeOpts();
  opts.prog_fd = progFd;
  opts.flags = BPF_TC_F_REPLACE;
  int err = bpf_tc_attach(&hook, &opts);
  if (err)
    return Error::fromErrno(err, std::string("attach tc ") + whereName(where) + " program on ifindex " +
                                     std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

Status attach(int ifindex, int progFd, bpf_tc_attach_point where) {
  if (tcxSluiceProg(ifindex, where, nullptr) != 0) return tcxAttach(ifindex, progFd, where);
  SL_TRY(createClsact(ifindex, where));
  return attachFilter(ifindex, progFd, where);
}
Status detach(int ifindex, bpf_tc_attach_point where) {
  SL_TRY(tcxDetach(ifindex, where));
  bpf_tc_hook hook = makeHook(ifindex, where);
  bpf_tc_opts opts = makeOpts();
  int err = bpf_tc_detach(&hook, &opts);
  if (err && err != -ENOENT && err != -ENODEV && err != -EINVAL)
    return Error::fromErrno(err, std::string("detach tc ") + whereName(where) + " program from ifindex " +
                                     std::to_string(ifindex), CniCode::kBpf);
  return okStatus();
}

Result<uint32_t> query(int ifindex, bpf_tc_attach_point where) {
  bpf_tc_hook hook = makeHook(ifindex, where);
  bpf_tc_opts opts = makeOpts();
  int err;
  {
    QuietLibbpf quiet;  // no clsact, or no filter there: an answer (the agent asks every second)
    err = bpf_tc_query(&hook, &opts);
  }
  if (err == -ENOENT || err == -EINVAL) return tcxSluiceProg(ifindex, where, nullptr);  // not at our clsact slot
  if (err)
    return Error::fromErrno(err, std::string("query tc ") + whereName(where) + " on ifindex " +
                                     std::to_string(ifindex), CniCode::kBpf);
  return opts.prog_id;
}

}  // namespace

Status attachTcIngress(int ifindex, int progFd) { return attach(ifindex, progFd, BPF_TC_INGRESS); }
Status detachTcIngress(int ifindex) { return detach(ifindex, BPF_TC_INGRESS); }
Result<uint32_t> tcIngressProgId(int ifindex) { return query(ifindex, BPF_TC_INGRESS); }
Status attachTcEgress(int ifindex, int progFd) { return attach(ifindex, progFd, BPF_TC_EGRESS); }
Status detachTcEgress(int ifindex) { return detach(ifindex, BPF_TC_EGRESS); }
Result<uint32_t> tcEgressProgId(int ifindex) { return query(ifindex, BPF_TC_EGRESS); }
Status createClsact(int ifindex) {
  return createClsact(ifindex, static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
}
Status attachTcPair(int ifindex, int ingressFd, int egressFd) {
  SL_TRY(attachFilter(ifindex, ingressFd, BPF_TC_INGRESS));
  return attachFilter(ifindex, egressFd, BPF_TC_EGRESS);
}
Status attachTcxIngress(int ifindex, int progFd) { return tcxAttach(ifindex, progFd, BPF_TC_INGRESS); }
Status attachTcxEgress(int ifindex, int progFd) { return tcxAttach(ifindex, progFd, BPF_TC_EGRESS); }

Result<uint32_t> progId(int progFd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(progFd, &info, &len) != 0)
    return Error::fromErrno(errno, "inspect BPF program", CniCode::kBpf);
  return info.id;
}

namespace {
// The info of a loaded program, nullopt when there is no such program.
std::optional<bpf_prog_info> progInfoById(uint32_t id) {
  Fd fd(bpf_prog_get_fd_by_id(id));
  if (!fd.valid()) return std::nullopt;
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return std::nullopt;
  return info;
}
}  // namespace

std::string progNameById(uint32_t id) {
  auto info = progInfoById(id);
  if (!info) return {};
  return std::string(info->name, strnlen(info->name, sizeof(info->name)));
}

bool sameProgramCode(uint32_t idA, uint32_t idB) {
  auto a = progInfoById(idA);
  auto b = progInfoById(idB);
  return a && b && std::memcmp(a->tag, b->tag, sizeof(a->tag)) == 0;
}

}  // namespace sluice::bpf
