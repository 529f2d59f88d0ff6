// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/ipam.h"

#include "sluice/cni/hash.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace sluice::cni {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<RangeSet> ranges(const char* text) {
  auto r = parseRanges(json::parse(text), "ranges");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : std::vector<RangeSet>{};
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-ipam-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = LocalIpam::directory(root_.string(), "net1");
  }
  void TearDown() override { fs::remove_all(root_); }

  LocalIpam ipam(const char* rangesJson) { return LocalIpam(dir_, ranges(rangesJson)); }

  std::string alloc(LocalIpam& i, const std::string& cid, const std::string& ifname = "eth0") {
    auto a = i.allocate(cid, ifname);
    EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.error().message());
    if (!a.ok() || a->empty()) return "";
    return (*a)[0].ip.str();
  }

  fs::path root_;
  std::string dir_;
};

TEST_F(IpamTest, DirectoryLayout) {
  EXPECT_EQ(LocalIpam::directory("/var/lib/sluice", "sluice"), "/var/lib/sluice/ipam/sluice");
}

TEST_F(IpamTest, AllocatesInOrderAndWritesHostLocalStyleFiles) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  auto a = i.allocate("c1", "eth0");
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].ip.str(), "10.244.1.1");  // no implicit gateway: .1 is a pod address
  EXPECT_FALSE((*a)[0].reused);
  EXPECT_EQ((*a)[0].range.subnet.str(), "10.244.1.0/24");
  EXPECT_EQ(alloc(i, "c2"), "10.244.1.2");
  EXPECT_EQ(readFile(fs::path(dir_) / "10.244.1.1"), "c1\neth0\n");
  EXPECT_EQ(readFile(fs::path(dir_) / "10.244.1.2"), "c2\neth0\n");
  EXPECT_EQ(readFile(fs::path(dir_) / "last_reserved_ip.0"), "10.244.1.2\n");
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "lock"));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_NE(e.path().filename().string().rfind(".tmp-", 0), 0u) << e.path();
}

TEST_F(IpamTest, SameAttachmentGetsTheSameAddressBack) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  EXPECT_EQ(alloc(i, "c1"), "10.244.1.1");
  auto again = i.allocate("c1", "eth0");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].ip.str(), "10.244.1.1");
  EXPECT_TRUE((*again)[0].reused);
  // Another interface of the same container is another attachment.
  EXPECT_EQ(alloc(i, "c1", "net1"), "10.244.1.2");
  auto found = i.find("c1", "eth0");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].str(), "10.244.1.1");
  EXPECT_EQ(i.list()->size(), 2u);
}

TEST_F(IpamTest, NeverHandsOutNetworkBroadcastOrExplicitGateway) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/29","gateway":"10.244.1.3"}]])");
  std::set<std::string> got;
  for (int n = 0; n < 5; ++n) got.insert(alloc(i, "c" + std::to_string(n)));
  EXPECT_EQ(got, (std::set<std::string>{"10.244.1.1", "10.244.1.2", "10.244.1.4", "10.244.1.5",
                                        "10.244.1.6"}));
  auto full = i.allocate("c9", "eth0");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), CniCode::kIpamExhausted);
}

TEST_F(IpamTest, ExplicitStartAndEndEvenAtTheSubnetEdges) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24","rangeStart":"10.244.1.0","rangeEnd":"10.244.1.255"}]])");
  EXPECT_EQ(alloc(i, "a"), "10.244.1.1");  // .0 is the network even inside the range
  auto j = LocalIpam(dir_ + "-2", ranges(R"([[{"subnet":"10.244.1.0/24","rangeStart":"10.244.1.253"}]])"));
  EXPECT_EQ(alloc(j, "a"), "10.244.1.253");
  EXPECT_EQ(alloc(j, "b"), "10.244.1.254");
  auto full = j.allocate("c", "eth0");  // .255 is the broadcast
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), CniCode::kIpamExhausted);
}

TEST_F(IpamTest, ExhaustionIsCode101WithAClearMessageAndReservesNothing) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/30"}]])");
  EXPECT_EQ(alloc(i, "a"), "10.244.1.1");
  EXPECT_EQ(alloc(i, "b"), "10.244.1.2");
  auto r = i.allocate("c", "eth0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), CniCode::kIpamExhausted);
  EXPECT_NE(r.error().message().find("no free address"), std::string::npos);
  EXPECT_NE(r.error().message().find("10.244.1.0/30"), std::string::npos);
  EXPECT_TRUE(i.find("c", "eth0")->empty());
  EXPECT_EQ(i.list()->size(), 2u);
}

TEST_F(IpamTest, ReleaseFreesAndRoundRobinMovesOn) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/29"}]])");  // .1 - .6
  EXPECT_EQ(alloc(i, "a"), "10.244.1.1");
  EXPECT_EQ(alloc(i, "b"), "10.244.1.2");
  auto rel = i.release("a", "eth0");
  ASSERT_TRUE(rel.ok());
  ASSERT_EQ(rel->size(), 1u);
  EXPECT_EQ((*rel)[0].str(), "10.244.1.1");
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "10.244.1.1"));
  // Round robin: a freed address is not handed out again right away.
  EXPECT_EQ(alloc(i, "c"), "10.244.1.3");
  EXPECT_EQ(alloc(i, "d"), "10.244.1.4");
  EXPECT_EQ(alloc(i, "e"), "10.244.1.5");
  EXPECT_EQ(alloc(i, "f"), "10.244.1.6");
  EXPECT_EQ(alloc(i, "g"), "10.244.1.1");  // wrapped
  // Releasing what is not held is success with nothing freed.
  auto none = i.release("nobody", "eth0");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(IpamTest, ReleaseWithoutStateCreatesNothing) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  auto r = i.release("a", "eth0");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(IpamTest, CorruptLastReservedFileIsIgnored) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  fs::create_directories(dir_);
  std::ofstream(fs::path(dir_) / "last_reserved_ip.0") << "garbage";
  EXPECT_EQ(alloc(i, "a"), "10.244.1.1");
  std::ofstream(fs::path(dir_) / "last_reserved_ip.0") << "192.168.0.1";  // outside every range
  EXPECT_EQ(alloc(i, "b"), "10.244.1.2");
}

TEST_F(IpamTest, SeveralRangesInASetAreOnePool) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/30"},{"subnet":"10.244.2.0/30"}]])");
  std::vector<std::string> got;
  for (int n = 0; n < 4; ++n) got.push_back(alloc(i, "c" + std::to_string(n)));
  EXPECT_EQ(got, (std::vector<std::string>{"10.244.1.1", "10.244.1.2", "10.244.2.1", "10.244.2.2"}));
  EXPECT_FALSE(i.allocate("c9", "eth0").ok());
}

TEST_F(IpamTest, OneAddressPerRangeSetAndAllOrNothing) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00::/126"}]])");
  auto a = i.allocate("a", "eth0");
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].ip.str(), "10.244.1.1");
  EXPECT_EQ((*a)[1].ip.str(), "fd00::1");
  EXPECT_EQ((*a)[1].rangeSet, 1);
  ASSERT_TRUE(i.allocate("b", "eth0").ok());  // fd00::2
  ASSERT_TRUE(i.allocate("c", "eth0").ok());  // fd00::3 (no broadcast in IPv6)
  auto d = i.allocate("d", "eth0");           // IPv6 set exhausted
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), CniCode::kIpamExhausted);
  EXPECT_NE(d.error().message().find("range set 1"), std::string::npos);
  EXPECT_TRUE(i.find("d", "eth0")->empty());  // its IPv4 address was given back
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "10.244.1.4"));
}

// IPv6 has no network or broadcast address, but a subnet's first address is its subnet-router
// anycast address (RFC 4291 2.6.1): host-local never hands it out, nor do we, even when a
// rangeStart names it (and the last address is a normal one). Sluice's agent gives it to the
// node itself.
TEST_F(IpamTest, Ipv6NeverHandsOutTheSubnetRouterAnycastAddress) {
  auto i = ipam(R"([[{"subnet":"fd00:10:244:1::/126","rangeStart":"fd00:10:244:1::"}]])");
  std::set<std::string> got;
  for (int n = 0; n < 3; ++n) got.insert(alloc(i, "c" + std::to_string(n)));
  EXPECT_EQ(got, (std::set<std::string>{"fd00:10:244:1::1", "fd00:10:244:1::2", "fd00:10:244:1::3"}));
  auto full = i.allocate("c9", "eth0");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), CniCode::kIpamExhausted);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "fd00:10:244:1::"));
}

TEST_F(IpamTest, ConcurrentThreadsGetDistinctAddresses) {
  constexpr int kN = 50;
  std::vector<std::string> got(kN);
  std::vector<std::thread> threads;
  const auto set = ranges(R"([[{"subnet":"10.244.1.0/24"}]])");
  for (int n = 0; n < kN; ++n)
    threads.emplace_back([&, n] {
      LocalIpam own(dir_, set);  // separate lock descriptors, as separate plugin processes
      auto a = own.allocate("t" + std::to_string(n), "eth0");
      if (a.ok()) got[n] = (*a)[0].ip.str();
    });
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(got.begin(), got.end());
  distinct.erase("");
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kN));
}

TEST_F(IpamTest, ConcurrentProcessesGetDistinctAddresses) {
  constexpr int kN = 50;
  const auto set = ranges(R"([[{"subnet":"10.244.1.0/24"}]])");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::vector<pid_t> pids;
  for (int n = 0; n < kN; ++n) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      LocalIpam own(dir_, set);
      auto a = own.allocate("p" + std::to_string(n), "eth0");
      if (!a.ok()) ::_exit(2);
      std::string line = (*a)[0].ip.str() + "\n";
      // Lines shorter than PIPE_BUF are written atomically.
      ::_exit(::write(fds[1], line.data(), line.size()) == static_cast<ssize_t>(line.size()) ? 0 : 3);
    }
    pids.push_back(pid);
  }
  ::close(fds[1]);
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  std::set<std::string> distinct;
  std::istringstream lines(all);
  for (std::string l; std::getline(lines, l);) distinct.insert(l);
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kN));
  EXPECT_EQ(LocalIpam(dir_, set).list()->size(), static_cast<size_t>(kN));
}

TEST_F(IpamTest, LockHeldByAProcessThatDiedDoesNotBlock) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  EXPECT_EQ(alloc(i, "before"), "10.244.1.1");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open((dir_ + "/lock").c_str(), O_RDWR);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    // Leave what a crash in the middle of an allocation can leave: a named temporary (only on
    // filesystems without O_TMPFILE) and an index entry's replacement.
    int t = ::open((dir_ + "/.tmp-99999-0").c_str(), O_WRONLY | O_CREAT, 0644);
    if (t >= 0) ::close(t);
    if (::symlink("10.244.1.9", (dir_ + "/.att.0123~").c_str()) != 0) ::_exit(1);
    char c = 'x';
    if (::write(ready[1], &c, 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  // The lock is really held now: a non-blocking attempt fails...
  int probe = ::open((dir_ + "/lock").c_str(), O_RDWR);
  ASSERT_GE(probe, 0);
  EXPECT_NE(::flock(probe, LOCK_EX | LOCK_NB), 0);
  // ...until the holder dies.
  ::kill(pid, SIGKILL);
  int status;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(::flock(probe, LOCK_EX | LOCK_NB), 0);
  ::close(probe);
  EXPECT_EQ(alloc(i, "after"), "10.244.1.2");
  EXPECT_EQ(i.find("before", "eth0")->size(), 1u);  // state survived
  ASSERT_TRUE(i.list().ok());                       // what GC does first
  EXPECT_FALSE(fs::exists(fs::path(dir_) / ".tmp-99999-0"));  // crash leftovers cleaned
  EXPECT_FALSE(fs::is_symlink(fs::path(dir_) / ".att.0123~"));
}

TEST_F(IpamTest, StateSurvivesANewAllocatorInstance) {
  {
    auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
    alloc(i, "a");
    alloc(i, "b");
  }
  auto j = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  EXPECT_EQ(alloc(j, "b"), "10.244.1.2");
  EXPECT_EQ(alloc(j, "c"), "10.244.1.3");
}

TEST_F(IpamTest, ReadsHostLocalFilesWithoutTrailingNewline) {
  fs::create_directories(dir_);
  std::ofstream(fs::path(dir_) / "10.244.1.1") << "legacy\r\neth0";
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  auto found = i.find("legacy", "eth0");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(alloc(i, "new"), "10.244.1.2");
}

// The attachment's index entry: ".att.<key>", listing "<address>[,<address>...]".
fs::path indexEntry(const std::string& dir, const std::string& cid, const std::string& ifname = "eth0") {
  std::string k = cid;
  k.push_back('\0');
  k += ifname;
  return fs::path(dir) / (".att." + sha256Hex(k).substr(0, 32));
}

// The list an entry holds: in the extended attribute of the reservation file it is, or as the
// target of a symlink.
std::string indexTarget(const std::string& dir, const std::string& cid) {
  const std::string path = indexEntry(dir, cid).string();
  char buf[4096];
  const ssize_t n = ::lgetxattr(path.c_str(), "user.sluice.addresses", buf, sizeof(buf));
  if (n >= 0) return std::string(buf, static_cast<size_t>(n));
  std::error_code ec;
  auto t = fs::read_symlink(path, ec);
  return ec ? "" : t.string();
}

size_t indexEntries(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind(".att.", 0) == 0;
  return n;
}

TEST_F(IpamTest, EachAttachmentHasOneIndexEntryListingItsAddressesUntilRelease) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])");
  ASSERT_TRUE(i.allocate("c1", "eth0").ok());
  ASSERT_TRUE(i.allocate("c2", "eth0").ok());
  EXPECT_EQ(indexTarget(dir_, "c1"), "10.244.1.1,fd00:10:244:1::1");
  EXPECT_EQ(indexTarget(dir_, "c2"), "10.244.1.2,fd00:10:244:1::2");
  EXPECT_EQ(indexEntries(dir_), 2u);
  auto freed = i.release("c1", "eth0");
  ASSERT_TRUE(freed.ok());
  EXPECT_EQ(freed->size(), 2u);
  EXPECT_EQ(indexEntries(dir_), 1u);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "10.244.1.1"));
  EXPECT_EQ(readFile(fs::path(dir_) / "10.244.1.2"), "c2\neth0\n");
}

// One file per attachment: its entry and its reservations are names of the same file (what ADD
// creates and DEL frees), the entry carrying the list; releasing the attachment frees it.
TEST_F(IpamTest, AnAttachmentIsOneFileNamedByItsEntryAndItsAddresses) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])");
  ASSERT_TRUE(i.allocate("c1", "eth0").ok());
  struct stat entry {}, v4 {}, v6 {};
  ASSERT_EQ(::lstat(indexEntry(dir_, "c1").c_str(), &entry), 0);
  ASSERT_EQ(::lstat((dir_ + "/10.244.1.1").c_str(), &v4), 0);
  ASSERT_EQ(::lstat((dir_ + "/fd00:10:244:1::1").c_str(), &v6), 0);
  EXPECT_TRUE(S_ISREG(entry.st_mode));
  EXPECT_EQ(entry.st_ino, v4.st_ino);
  EXPECT_EQ(entry.st_ino, v6.st_ino);
  EXPECT_EQ(entry.st_nlink, 3u);
  EXPECT_EQ(readFile(indexEntry(dir_, "c1")), "c1\neth0\n");
  EXPECT_EQ(indexTarget(dir_, "c1"), "10.244.1.1,fd00:10:244:1::1");
  ASSERT_EQ(i.release("c1", "eth0")->size(), 2u);
  EXPECT_FALSE(fs::exists(indexEntry(dir_, "c1")));
  EXPECT_EQ(indexEntries(dir_), 0u);
}

// A state directory on a filesystem without user extended attributes (ramfs): the entries are
// symlinks holding the list, and everything else works the same.
TEST_F(IpamTest, WithoutExtendedAttributesTheEntryIsASymlink) {
  fs::create_directories(root_ / "ramfs");
  ASSERT_EQ(::mount("sluice-ipam-test", (root_ / "ramfs").c_str(), "ramfs", 0, nullptr), 0) << std::strerror(errno);
  struct Unmount {
    fs::path at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{root_ / "ramfs"};
  dir_ = LocalIpam::directory((root_ / "ramfs").string(), "net1");
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])");
  ASSERT_TRUE(i.allocate("c1", "eth0").ok());
  ASSERT_TRUE(i.allocate("c2", "eth0").ok());
  EXPECT_TRUE(fs::is_symlink(indexEntry(dir_, "c1")));
  EXPECT_EQ(indexTarget(dir_, "c2"), "10.244.1.2,fd00:10:244:1::2");
  ASSERT_EQ(i.find("c1", "eth0")->size(), 2u);
  ASSERT_EQ(i.release("c1", "eth0")->size(), 2u);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "10.244.1.1"));
  EXPECT_EQ(indexEntries(dir_), 1u);
  EXPECT_EQ(i.list()->size(), 2u);
}

// A range set added to the configuration: the attachment keeps its address and gets one of the
// new family, and its entry then lists both.
TEST_F(IpamTest, AReusedAndAFreshAddressShareTheEntry) {
  ASSERT_TRUE(ipam(R"([[{"subnet":"10.244.1.0/24"}]])").allocate("c1", "eth0").ok());
  auto both = ipam(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])");
  auto a = both.allocate("c1", "eth0");
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_TRUE((*a)[0].reused);
  EXPECT_FALSE((*a)[1].reused);
  EXPECT_EQ(indexTarget(dir_, "c1"), "10.244.1.1,fd00:10:244:1::1");
  EXPECT_FALSE(fs::exists(indexEntry(dir_, "c1").string() + "~"));
}

// A state directory of an older plugin (or host-local's format, written by hand): no index,
// no mark. The first operation indexes it; the attachments there keep their addresses.
TEST_F(IpamTest, ADirectoryWithoutTheIndexIsIndexedOnFirstUse) {
  fs::create_directories(dir_);
  std::ofstream(fs::path(dir_) / "10.244.1.7") << "a\neth0\n";
  std::ofstream(fs::path(dir_) / "10.244.1.9") << "b\neth0\n";
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  auto again = i.allocate("a", "eth0");
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].ip.str(), "10.244.1.7");
  EXPECT_TRUE((*again)[0].reused);
  EXPECT_EQ(indexTarget(dir_, "a"), "10.244.1.7");
  EXPECT_EQ(indexTarget(dir_, "b"), "10.244.1.9");
  EXPECT_EQ(readFile(fs::path(dir_) / "lock"), "sluice-ipam index 2\n");
  auto freed = i.release("b", "eth0");
  ASSERT_TRUE(freed.ok());
  ASSERT_EQ(freed->size(), 1u);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "10.244.1.9"));
}

// An older plugin writing into an indexed directory (a rollback) adds reservations without
// entries: listing them, as GC does before releasing, indexes them.
TEST_F(IpamTest, ListingIndexesReservationsMadeWithoutAnEntry) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  EXPECT_EQ(alloc(i, "new"), "10.244.1.1");
  std::ofstream(fs::path(dir_) / "10.244.1.5") << "old\neth0\n";
  auto listed = i.list();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 2u);
  EXPECT_EQ(i.find("old", "eth0")->size(), 1u);
  EXPECT_EQ(i.release("old", "eth0")->size(), 1u);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "10.244.1.5"));
}

// A crash between an entry and its reservations, or a hand-made entry, lists addresses that
// are free or another attachment's: they are not the attachment's, and listing drops them.
TEST_F(IpamTest, AnEntryListingAddressesOfOthersGivesNothingAway) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}]])");
  EXPECT_EQ(alloc(i, "a"), "10.244.1.1");
  fs::create_symlink("10.244.1.1,10.244.1.3", indexEntry(dir_, "b"));  // a's, and a free one
  auto found = i.find("b", "eth0");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  EXPECT_EQ(i.release("b", "eth0")->size(), 0u);
  EXPECT_FALSE(fs::is_symlink(indexEntry(dir_, "b")));
  EXPECT_EQ(readFile(fs::path(dir_) / "10.244.1.1"), "a\neth0\n");
  fs::create_symlink("10.244.1.1", indexEntry(dir_, "b"));
  EXPECT_EQ(alloc(i, "b"), "10.244.1.2");
  EXPECT_EQ(indexTarget(dir_, "b"), "10.244.1.2");
  ASSERT_TRUE(i.list().ok());
  EXPECT_EQ(indexEntries(dir_), 2u);
}

// Reservations are linked from an unnamed file: nothing but reservations, index entries, the
// lock and the round-robin hint is ever in the directory.
TEST_F(IpamTest, NoTemporaryIsEverNamed) {
  auto i = ipam(R"([[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])");
  for (const char* c : {"a", "b", "c"}) ASSERT_TRUE(i.allocate(c, "eth0").ok());
  ASSERT_TRUE(i.release("b", "eth0").ok());
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
  EXPECT_EQ(names.size(), 2u * 2 + 2 + 1 + 2) << ::testing::PrintToString(names);
  for (const auto& n : names) EXPECT_EQ(n.find("tmp"), std::string::npos) << n;
}

}  // namespace
}  // namespace sluice::cni
