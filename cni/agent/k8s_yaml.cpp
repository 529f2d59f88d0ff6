// SPDX-License-Identifier: Apache-2.0
#include "k8s_yaml.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::agent {
namespace {

using nlohmann::json;

// Deeper nesting is refused: the parsers recurse, and a hostile or corrupt file must get an
// error, not a stack overflow. Kubeconfigs nest about five levels.
constexpr int kMaxDepth = 64;

struct Line {
  int indent = 0;          // leading spaces
  std::string_view text;   // after the indentation, without a trailing '\r'
  bool blank = true;       // empty or whitespace only
  bool comment = false;    // first non-blank character is '#'
  bool significant() const { return !blank && !comment; }
};

Error yamlError(int lineNo, const std::string& what) {
  return Error(CniCode::kDecodeFailure, "YAML line " + std::to_string(lineNo) + ": " + what);
}

bool isSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view trimRight(std::string_view s) {
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view trimLeft(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  return s;
}

// True when the rest after a scalar is nothing or only a comment.
bool onlyComment(std::string_view rest) {
  rest = trimLeft(rest);
  return rest.empty() || rest.front() == '#';
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<uint32_t> parseHex(std::string_view s) {
  uint32_t v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
    else return std::nullopt;
  }
  return v;
}

// Parses a quoted scalar starting at s[i] (a quote); on success i points past the closing
// quote. Only single-line quoted scalars are supported.
Result<std::string> parseQuoted(std::string_view s, size_t& i, int lineNo) {
  const char q = s[i++];
  std::string out;
  while (i < s.size()) {
    char c = s[i];
    if (q == '\'') {
      if (c == '\'') {
        if (i + 1 < s.size() && s[i + 1] == '\'') {
          out += '\'';
          i += 2;
          continue;
        }
        ++i;
        return out;
      }
      out += c;
      ++i;
      continue;
    }
    if (c == '"') {
      ++i;
      return out;
    }
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) break;
    char e = s[i + 1];
    i += 2;
    switch (e) {
      case '0': out += '\0'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 't': case '\t': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'v': out += '\v'; break;
      case 'f': out += '\f'; break;
      case 'r': out += '\r'; break;
      case 'e': out += '\x1b'; break;
      case ' ': out += ' '; break;
      case '"': out += '"'; break;
      case '/': out += '/'; break;
      case '\\': out += '\\'; break;
      case 'x': case 'u': case 'U': {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (i + n > s.size()) return yamlError(lineNo, "truncated escape in double-quoted string");
        auto cp = parseHex(s.substr(i, n));
        if (!cp || *cp > 0x10FFFF) return yamlError(lineNo, "bad escape in double-quoted string");
        appendUtf8(out, *cp);
        i += n;
        break;
      }
      default:
        return yamlError(lineNo, std::string("unknown escape \\") + e + " in double-quoted string");
    }
  }
  return yamlError(lineNo, "unterminated quoted string (multi-line quoted scalars are not supported)");
}

bool isInteger(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size() || s.size() - i > 18) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

Result<json> plainScalar(std::string_view s, int lineNo) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return json(true);
  if (s == "false" || s == "False" || s == "FALSE") return json(false);
  switch (s.front()) {
    case '&': case '*': return yamlError(lineNo, "anchors and aliases are not supported");
    case '!': return yamlError(lineNo, "tags are not supported");
    case '%': case '@': case '`': return yamlError(lineNo, "a plain scalar cannot start with '" + std::string(1, s.front()) + "'");
    default: break;
  }
  if (isInteger(s)) return json(std::stoll(std::string(s)));
  return json(std::string(s));
}

// Cuts a plain scalar at a comment (" #") and trims it.
std::string_view plainText(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '#' && (i == 0 || isSpace(s[i - 1]))) {
      s = s.substr(0, i);
      break;
    }
  return trimRight(trimLeft(s));
}

struct DepthGuard {
  explicit DepthGuard(int& d) : d_(d) { ++d_; }
  ~DepthGuard() { --d_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  int& d_;
};

Error tooDeep(int lineNo) {
  return yamlError(lineNo, "nested more than " + std::to_string(kMaxDepth) + " levels deep");
}

// One-line flow collections: [a, "b", {c: d}] and {k: v, k2: [x]}.
class FlowParser {
 public:
  FlowParser(std::string_view s, int lineNo) : s_(s), lineNo_(lineNo) {}

  Result<json> parseValue() {
    skipSpaces();
    if (i_ >= s_.size()) return yamlError(lineNo_, "unterminated flow collection (multi-line flow is not supported)");
    char c = s_[i_];
    if (c == '[') return parseSeq();
    if (c == '{') return parseMap();
    if (c == '"' || c == '\'') {
      SL_ASSIGN_OR_RETURN(std::string v, parseQuoted(s_, i_, lineNo_));
      return json(std::move(v));
    }
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ']' && s_[i_] != '}') {
      if (s_[i_] == '#' && i_ > 0 && isSpace(s_[i_ - 1])) break;
      ++i_;
    }
    return plainScalar(trimRight(s_.substr(start, i_ - start)), lineNo_);
  }

  size_t pos() const { return i_; }

 private:
  void skipSpaces() {
    while (i_ < s_.size() && isSpace(s_[i_])) ++i_;
  }
  Error unterminated() const {
    return yamlError(lineNo_, "unterminated flow collection (multi-line flow is not supported)");
  }

  Result<json> parseSeq() {
    DepthGuard guard(depth_);
    if (depth_ > kMaxDepth) return tooDeep(lineNo_);
    ++i_;
    json arr = json::array();
    skipSpaces();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return arr;
    }
    for (;;) {
      SL_ASSIGN_OR_RETURN(json v, parseValue());
      arr.push_back(std::move(v));
      skipSpaces();
      if (i_ >= s_.size()) return unterminated();
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        return arr;
      }
      return yamlError(lineNo_, "expected ',' or ']' in flow sequence");
    }
  }

  Result<json> parseMap() {
    DepthGuard guard(depth_);
    if (depth_ > kMaxDepth) return tooDeep(lineNo_);
    ++i_;
    json obj = json::object();
    skipSpaces();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return obj;
    }
    for (;;) {
      skipSpaces();
      if (i_ >= s_.size()) return unterminated();
      std::string key;
      if (s_[i_] == '"' || s_[i_] == '\'') {
        SL_ASSIGN_OR_RETURN(key, parseQuoted(s_, i_, lineNo_));
      } else {
        size_t start = i_;
        while (i_ < s_.size() && s_[i_] != ':' && s_[i_] != ',' && s_[i_] != '}') ++i_;
        key = std::string(trimRight(s_.substr(start, i_ - start)));
      }
      skipSpaces();
      json value = nullptr;
      if (i_ < s_.size() && s_[i_] == ':') {
        ++i_;
        SL_ASSIGN_OR_RETURN(value, parseValue());
      }
      if (obj.contains(key)) return yamlError(lineNo_, "duplicate key '" + key + "'");
      obj[key] = std::move(value);
      skipSpaces();
      if (i_ >= s_.size()) return unterminated();
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        return obj;
      }
      return yamlError(lineNo_, "expected ',' or '}' in flow mapping");
    }
  }

  std::string_view s_;
  int lineNo_;
  size_t i_ = 0;
  int depth_ = 0;
};

class BlockParser {
 public:
  explicit BlockParser(std::string_view text) {
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      std::string_view raw = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      raw_.push_back(raw);
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    for (std::string_view raw : raw_) {
      Line l;
      size_t n = 0;
      while (n < raw.size() && raw[n] == ' ') ++n;
      l.indent = static_cast<int>(n);
      l.text = trimRight(raw.substr(n));
      std::string_view rest = trimLeft(l.text);
      l.blank = rest.empty();
      l.comment = !l.blank && rest.front() == '#';
      if (!l.blank && l.text.front() == '\t' && !l.comment) tabIndentLine_ = tabIndentLine_ ? tabIndentLine_ : static_cast<int>(lines_.size()) + 1;
      lines_.push_back(l);
    }
  }

  Result<json> parseDocument() {
    if (tabIndentLine_) return yamlError(tabIndentLine_, "tabs are not allowed for indentation");
    skipInsignificant();
    if (pos_ < lines_.size() && lines_[pos_].indent == 0 && lines_[pos_].text.front() == '%')
      return yamlError(lineNo(), "YAML directives are not supported");
    if (pos_ < lines_.size() && isDocMarker(lines_[pos_].text, "---")) {
      std::string_view rest = lines_[pos_].text.substr(3);
      if (!onlyComment(rest)) return yamlError(lineNo(), "content after '---' is not supported");
      ++pos_;
      skipInsignificant();
    }
    if (pos_ >= lines_.size()) return json(nullptr);
    SL_ASSIGN_OR_RETURN(json doc, parseBlock(lines_[pos_].indent));
    skipInsignificant();
    if (pos_ < lines_.size()) {
      const Line& l = lines_[pos_];
      if (l.indent == 0 && isDocMarker(l.text, "...")) return doc;
      if (l.indent == 0 && isDocMarker(l.text, "---")) return yamlError(lineNo(), "multiple YAML documents are not supported");
      return yamlError(lineNo(), "unexpected indentation or content");
    }
    return doc;
  }

 private:
  static bool isDocMarker(std::string_view t, std::string_view marker) {
    return t.substr(0, 3) == marker && (t.size() == 3 || isSpace(t[3]));
  }
  static bool isSeqItem(std::string_view t) { return t == "-" || (t.size() >= 2 && t[0] == '-' && isSpace(t[1])); }

  int lineNo() const { return static_cast<int>(pos_) + 1; }

  // "---" or "..." at column 0 ends the document's root block whatever its shape; the
  // caller (parseDocument) then decides whether what follows is allowed.
  bool atDocumentMarker() const {
    if (pos_ >= lines_.size() || lines_[pos_].indent != 0) return false;
    return isDocMarker(lines_[pos_].text, "---") || isDocMarker(lines_[pos_].text, "...");
  }

  void skipInsignificant() {
    while (pos_ < lines_.size() && !lines_[pos_].significant()) ++pos_;
  }

  // The current line is significant and sits at `indent`.
  Result<json> parseBlock(int indent) {
    DepthGuard guard(depth_);
    if (depth_ > kMaxDepth) return tooDeep(lineNo());
    const Line& l = lines_[pos_];
    if (isSeqItem(l.text)) return parseSeq(indent);
    SL_ASSIGN_OR_RETURN(auto key, splitKey(l.text));
    if (key) return parseMap(indent);
    // A lone scalar (a document or an item that is just a value).
    SL_ASSIGN_OR_RETURN(json v, parseInline(l.text));
    ++pos_;
    skipInsignificant();
    return v;
  }

  Result<json> parseSeq(int indent) {
    json arr = json::array();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && isSeqItem(lines_[pos_].text)) {
      Line& l = lines_[pos_];
      std::string_view rest = trimLeft(l.text.substr(1));
      if (onlyComment(rest)) {
        ++pos_;
        skipInsignificant();
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
          SL_ASSIGN_OR_RETURN(json v, parseBlock(lines_[pos_].indent));
          arr.push_back(std::move(v));
        } else {
          arr.push_back(nullptr);
        }
      } else {
        // "- key: value" opens a mapping whose column is that of "key": reinterpret the
        // rest of this line as a line of its own at that column.
        int col = indent + static_cast<int>(l.text.size() - rest.size());
        l.indent = col;
        l.text = rest;
        SL_ASSIGN_OR_RETURN(json v, parseBlock(col));
        arr.push_back(std::move(v));
      }
      skipInsignificant();
      if (pos_ < lines_.size() && lines_[pos_].indent > indent)
        return yamlError(lineNo(), "unexpected indentation in sequence");
    }
    return arr;
  }

  struct KeySplit {
    std::string key;
    std::string_view rest;  // after the ':'
  };

  // Splits "key: rest" / "key:"; nullopt when the line is not a mapping entry.
  Result<std::optional<KeySplit>> splitKey(std::string_view t) {
    if (t.empty()) return std::optional<KeySplit>();
    if (t.front() == '"' || t.front() == '\'') {
      size_t i = 0;
      SL_ASSIGN_OR_RETURN(std::string key, parseQuoted(t, i, lineNo()));
      std::string_view after = trimLeft(t.substr(i));
      if (after.empty() || after.front() != ':' || (after.size() > 1 && !isSpace(after[1])))
        return std::optional<KeySplit>();
      return std::optional<KeySplit>(KeySplit{std::move(key), after.substr(1)});
    }
    if (t.front() == '[' || t.front() == '{' || t.front() == '#') return std::optional<KeySplit>();
    if (t.front() == '?') return yamlError(lineNo(), "complex mapping keys are not supported");
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '#' && i > 0 && isSpace(t[i - 1])) break;
      if (t[i] == ':' && (i + 1 == t.size() || isSpace(t[i + 1]))) {
        return std::optional<KeySplit>(KeySplit{std::string(trimRight(t.substr(0, i))), t.substr(i + 1)});
      }
    }
    return std::optional<KeySplit>();
  }

  Result<json> parseMap(int indent) {
    json obj = json::object();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && !isSeqItem(lines_[pos_].text) &&
           !atDocumentMarker()) {
      const int keyLine = lineNo();
      SL_ASSIGN_OR_RETURN(auto split, splitKey(lines_[pos_].text));
      if (!split) return yamlError(keyLine, "expected 'key: value'");
      if (obj.contains(split->key)) return yamlError(keyLine, "duplicate key '" + split->key + "'");
      std::string_view rest = trimLeft(split->rest);
      json value;
      if (onlyComment(rest)) {
        ++pos_;
        skipInsignificant();
        if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
          SL_ASSIGN_OR_RETURN(value, parseBlock(lines_[pos_].indent));
        } else if (pos_ < lines_.size() && lines_[pos_].indent == indent && isSeqItem(lines_[pos_].text)) {
          // kubectl writes sequences at the column of their key.
          SL_ASSIGN_OR_RETURN(value, parseSeq(indent));
        } else {
          value = nullptr;
        }
      } else if (rest.front() == '|' || rest.front() == '>') {
        SL_ASSIGN_OR_RETURN(value, parseBlockScalar(rest, indent));
      } else {
        SL_ASSIGN_OR_RETURN(value, parseInline(rest));
        ++pos_;
      }
      obj[split->key] = std::move(value);
      skipInsignificant();
      if (pos_ < lines_.size() && lines_[pos_].indent > indent)
        return yamlError(lineNo(), "unexpected indentation after key '" + split->key + "'");
    }
    return obj;
  }

  // A scalar or flow collection that ends on this line.
  Result<json> parseInline(std::string_view s) {
    if (s.front() == '"' || s.front() == '\'') {
      size_t i = 0;
      SL_ASSIGN_OR_RETURN(std::string v, parseQuoted(s, i, lineNo()));
      if (!onlyComment(s.substr(i))) return yamlError(lineNo(), "unexpected text after a quoted string");
      return json(std::move(v));
    }
    if (s.front() == '[' || s.front() == '{') {
      FlowParser fp(s, lineNo());
      SL_ASSIGN_OR_RETURN(json v, fp.parseValue());
      if (!onlyComment(s.substr(fp.pos()))) return yamlError(lineNo(), "unexpected text after a flow collection");
      return v;
    }
    if (isSeqItem(s)) return yamlError(lineNo(), "a block sequence cannot start on a mapping key's line");
    std::string_view text = plainText(s);
    if (auto k = splitKey(text); k.ok() && k.value())
      return yamlError(lineNo(), "nested mapping on one line (write it on the next line, indented)");
    return plainScalar(text, lineNo());
  }

  // "|" or ">" with optional chomping (-/+) and indentation (1-9) indicators.
  Result<json> parseBlockScalar(std::string_view header, int parentIndent) {
    const bool folded = header.front() == '>';
    char chomp = 'c';
    int explicitIndent = 0;
    size_t i = 1;
    for (; i < header.size() && i < 3; ++i) {
      char c = header[i];
      if ((c == '-' || c == '+') && chomp == 'c') chomp = c;
      else if (c >= '1' && c <= '9' && explicitIndent == 0) explicitIndent = c - '0';
      else break;
    }
    if (!onlyComment(header.substr(i))) return yamlError(lineNo(), "bad block scalar header");
    ++pos_;
    int blockIndent = explicitIndent ? parentIndent + explicitIndent : 0;
    if (!blockIndent) {
      for (size_t j = pos_; j < lines_.size(); ++j)
        if (!lines_[j].blank) {
          blockIndent = lines_[j].indent;
          break;
        }
      if (blockIndent <= parentIndent) blockIndent = parentIndent + 1;
    }
    std::vector<std::string_view> body;
    while (pos_ < lines_.size()) {
      std::string_view raw = raw_[pos_];
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      if (lines_[pos_].blank) {
        body.push_back(raw.size() > static_cast<size_t>(blockIndent) ? raw.substr(blockIndent) : std::string_view());
      } else if (lines_[pos_].indent >= blockIndent) {
        body.push_back(raw.substr(blockIndent));
      } else {
        break;
      }
      ++pos_;
    }
    size_t trailing = 0;
    while (trailing < body.size() && trimRight(body[body.size() - 1 - trailing]).empty()) ++trailing;
    std::vector<std::string_view> content(body.begin(), body.end() - static_cast<std::ptrdiff_t>(trailing));
    std::string out;
    bool sawText = false;
    auto isMoreIndented = [](std::string_view l) { return !l.empty() && isSpace(l.front()); };
    for (size_t j = 0; j < content.size(); ++j) {
      std::string_view l = content[j];
      if (j > 0) {
        std::string_view prev = content[j - 1];
        if (!folded || isMoreIndented(prev) || isMoreIndented(l) || l.empty()) {
          out += '\n';
        } else if (prev.empty()) {
          // Folding: the break before empty lines was dropped, they each stand for one.
          if (!sawText) out += '\n';
        } else {
          out += ' ';
        }
      }
      out += l;
      sawText = sawText || !l.empty();
    }
    if (chomp == '+') {
      if (!content.empty()) out += '\n';
      out.append(trailing, '\n');
    } else if (chomp == 'c' && !content.empty()) {
      out += '\n';
    }
    return json(std::move(out));
  }

  std::vector<std::string_view> raw_;
  std::vector<Line> lines_;
  size_t pos_ = 0;
  int tabIndentLine_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<nlohmann::json> parseYamlSubset(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  BlockParser p(text);
  return p.parseDocument();
}

}  // namespace sluice::agent
