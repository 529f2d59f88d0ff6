// SPDX-License-Identifier: Apache-2.0
// The kubeconfig YAML subset: what it reads, and what it refuses instead of misreading.
#include <gtest/gtest.h>

#include "k8s_yaml.h"

namespace sluice::agent {
namespace {

using nlohmann::json;

json parseOk(std::string_view text) {
  auto r = parseYamlSubset(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe()) << "\n" << text;
  return r.ok() ? r.value() : json();
}

std::string parseError(std::string_view text) {
  auto r = parseYamlSubset(text);
  EXPECT_FALSE(r.ok()) << "accepted: " << text << " as " << (r.ok() ? r.value().dump() : "");
  return r.ok() ? std::string() : r.error().describe();
}

TEST(YamlTest, KubectlLayoutWithSequencesAtTheKeyColumn) {
  json doc = parseOk(R"(apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://127.0.0.1:42123
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
)");
  EXPECT_EQ(doc, json::parse(R"({"apiVersion":"v1","clusters":[{"cluster":{"certificate-authority-data":"LS0tLS1CRUdJTg==",
    "server":"https://127.0.0.1:42123"},"name":"kind-kind"}],"contexts":[{"context":{"cluster":"kind-kind","user":"kind-kind"},
    "name":"kind-kind"}],"current-context":"kind-kind","kind":"Config","preferences":{},"users":[{"name":"kind-kind",
    "user":{"client-certificate-data":"Y2VydA==","client-key-data":"a2V5"}}]})"));
}

TEST(YamlTest, IndentedSequencesCommentsAndDocumentMarker) {
  json doc = parseOk(R"(# written by hand
---
users:   # two of them
  - name: a   # trailing comment
    user:
      token: "abc#def"
  -   name: b
      user: {}

  - name: 'it''s'
list:
  - one
  - - nested
    - seq
  -
    key: value
)");
  EXPECT_EQ(doc["users"].size(), 3u);
  EXPECT_EQ(doc["users"][0]["user"]["token"], "abc#def");
  EXPECT_EQ(doc["users"][1]["name"], "b");
  EXPECT_EQ(doc["users"][1]["user"], json::object());
  EXPECT_EQ(doc["users"][2]["name"], "it's");
  EXPECT_EQ(doc["list"], json::parse(R"(["one", ["nested", "seq"], {"key": "value"}])"));
}

TEST(YamlTest, ScalarTypes) {
  json doc = parseOk(R"(t: true
f: False
n: null
tilde: ~
empty:
i: 42
neg: -7
s: 42abc
url: https://host:6443/path?x=1#frag
colon: a:b
quotedTrue: "true"
single: 'x: y'
spaced:    padded value   
)");
  EXPECT_EQ(doc["t"], true);
  EXPECT_EQ(doc["f"], false);
  EXPECT_TRUE(doc["n"].is_null());
  EXPECT_TRUE(doc["tilde"].is_null());
  EXPECT_TRUE(doc["empty"].is_null());
  EXPECT_EQ(doc["i"], 42);
  EXPECT_EQ(doc["neg"], -7);
  EXPECT_EQ(doc["s"], "42abc");
  EXPECT_EQ(doc["url"], "https://host:6443/path?x=1#frag");
  EXPECT_EQ(doc["colon"], "a:b");
  EXPECT_EQ(doc["quotedTrue"], "true");
  EXPECT_EQ(doc["single"], "x: y");
  EXPECT_EQ(doc["spaced"], "padded value");
}

TEST(YamlTest, DoubleQuotedEscapes) {
  json doc = parseOk(R"(a: "tab\there\nnew \"q\" back\\slash \u00e9 \x41")"
                     "\n\"quoted key\": 1\n");
  EXPECT_EQ(doc["a"], "tab\there\nnew \"q\" back\\slash \xC3\xA9 A");
  EXPECT_EQ(doc["quoted key"], 1);
}

TEST(YamlTest, BlockScalars) {
  json doc = parseOk("lit: |\n  line1\n    indented\n  line3\n\nfolded: >\n  a\n  b\n\n  c\nstrip: |-\n  x\n\nkeep: |+\n  y\n\nafter: z\n");
  EXPECT_EQ(doc["lit"], "line1\n  indented\nline3\n");
  EXPECT_EQ(doc["folded"], "a b\nc\n");
  EXPECT_EQ(doc["strip"], "x");
  EXPECT_EQ(doc["keep"], "y\n\n");
  EXPECT_EQ(doc["after"], "z");
}

TEST(YamlTest, FlowCollections) {
  json doc = parseOk(R"(args: [eks, "get-token", '--cluster', x y]
env: {A: "1", B: [2, 3]}
none: []
)");
  EXPECT_EQ(doc["args"], json::parse(R"(["eks", "get-token", "--cluster", "x y"])"));
  EXPECT_EQ(doc["env"], json::parse(R"({"A": "1", "B": [2, 3]})"));
  EXPECT_EQ(doc["none"], json::array());
}

TEST(YamlTest, CrlfAndBom) {
  json doc = parseOk("\xEF\xBB\xBF" "a: 1\r\nb:\r\n- x\r\n");
  EXPECT_EQ(doc, json::parse(R"({"a": 1, "b": ["x"]})"));
}

TEST(YamlTest, DocumentEndMarker) {
  EXPECT_EQ(parseOk("a: 1\nb:\n  c: 2\n...\n"), json::parse(R"({"a": 1, "b": {"c": 2}})"));
}

TEST(YamlTest, EmptyDocumentIsNull) { EXPECT_TRUE(parseOk("# nothing\n\n").is_null()); }

TEST(YamlTest, RefusesWhatItDoesNotUnderstand) {
  EXPECT_NE(parseError("a:\n\tb: 1\n").find("tabs"), std::string::npos);
  EXPECT_NE(parseError("a: &anchor 1\nb: *anchor\n").find("anchors"), std::string::npos);
  EXPECT_NE(parseError("a: !!binary aGVsbG8=\n").find("tags"), std::string::npos);
  EXPECT_NE(parseError("a: 1\na: 2\n").find("duplicate key 'a'"), std::string::npos);
  EXPECT_NE(parseError("a: 1\n  b: 2\n").find("line 2"), std::string::npos);
  EXPECT_NE(parseError("a: 1\n---\nb: 2\n").find("multiple"), std::string::npos);
  EXPECT_NE(parseError("a:\n  b: 1\n---\nc: 2\n").find("multiple"), std::string::npos);
  EXPECT_NE(parseError("- x\n---\n- y\n").find("multiple"), std::string::npos);
  EXPECT_NE(parseError("a: \"unterminated\n").find("unterminated"), std::string::npos);
  EXPECT_NE(parseError("a: [1, 2\n").find("multi-line flow"), std::string::npos);
  EXPECT_NE(parseError("a: b: c\n").find("one line"), std::string::npos);
  EXPECT_NE(parseError("a:\n  - x\n  y: 1\n").find("line 3"), std::string::npos);
  EXPECT_NE(parseError("? complex\n: key\n").find("complex"), std::string::npos);
  EXPECT_NE(parseError("a: \"bad \\q escape\"\n").find("escape"), std::string::npos);
}

}  // namespace
}  // namespace sluice::agent
