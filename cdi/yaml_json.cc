#include "cdi/yaml_json.h"

#include <yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace crid {

namespace {

// One libyaml event, released when it goes out of scope.
class YamlEvent {
 public:
  YamlEvent() = default;
  YamlEvent(const YamlEvent&) = delete;
  YamlEvent& operator=(const YamlEvent&) = delete;
  ~YamlEvent() {
    if (valid_) {
      yaml_event_delete(&event_);
    }
  }
  yaml_event_t* get() { return &event_; }
  const yaml_event_t& operator*() const { return event_; }
  void set_valid() { valid_ = true; }

 private:
  yaml_event_t event_{};
  bool valid_ = false;
};

std::string Anchor(const yaml_char_t* anchor) {
  return anchor == nullptr ? "" : reinterpret_cast<const char*>(anchor);
}

// A plain scalar's value under YAML 1.2's core schema, with the leading-zero
// octal integers YAML 1.1 (and Go's yaml.v2, which the CDI reference reads
// specs with) also take.
Json ResolvePlain(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") {
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    return false;
  }
  absl::string_view digits = text;
  bool negative = false;
  if (absl::ConsumePrefix(&digits, "-")) {
    negative = true;
  } else {
    absl::ConsumePrefix(&digits, "+");
  }
  int base = 10;
  if (absl::ConsumePrefix(&digits, "0x")) {
    base = 16;
  } else if (absl::ConsumePrefix(&digits, "0o") || (digits.size() > 1 && digits[0] == '0')) {
    base = 8;
  }
  if (!digits.empty()) {
    bool all_digits = true;
    for (char c : digits) {
      bool ok = base == 16  ? absl::ascii_isxdigit(c)
                : base == 8 ? (c >= '0' && c <= '7')
                            : absl::ascii_isdigit(c);
      all_digits = all_digits && ok;
    }
    if (all_digits) {
      errno = 0;
      std::string body(digits);
      unsigned long long magnitude = std::strtoull(body.c_str(), nullptr, base);
      if (errno == 0) {
        if (!negative) {
          if (magnitude <= static_cast<unsigned long long>(INT64_MAX)) {
            return static_cast<int64_t>(magnitude);
          }
          return static_cast<uint64_t>(magnitude);
        }
        if (magnitude <= static_cast<unsigned long long>(INT64_MAX)) {
          return -static_cast<int64_t>(magnitude);
        }
      }
    }
  }
  double number = 0;
  if (absl::ascii_isdigit(text.back()) && absl::SimpleAtod(text, &number) &&
      std::isfinite(number)) {
    return number;
  }
  return text;
}

// Reads the next event into `e` inside a YamlReader method, returning the
// parser's error.
#define CRID_YAML_NEXT(e)                         \
  do {                                            \
    if (absl::Status st = Next(&(e)); !st.ok()) { \
      return st;                                  \
    }                                             \
  } while (false)

// The most values one document may expand to, aliases counted as often as
// they are used: a few small anchors nested in each other ("billion laughs")
// would otherwise multiply into gigabytes inside crid. A real CDI spec has a
// few thousand values at most.
constexpr size_t kMaxYamlValues = 100000;

class YamlReader {
 public:
  YamlReader(absl::string_view text, absl::string_view what) : what_(what) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  YamlReader(const YamlReader&) = delete;
  YamlReader& operator=(const YamlReader&) = delete;
  ~YamlReader() { yaml_parser_delete(&parser_); }

  absl::StatusOr<Json> FirstDocument() {
    YamlEvent event;
    CRID_YAML_NEXT(event);  // stream start
    YamlEvent document;
    CRID_YAML_NEXT(document);
    if ((*document).type != YAML_DOCUMENT_START_EVENT) {
      return Json();  // an empty stream
    }
    YamlEvent node;
    CRID_YAML_NEXT(node);
    return Node(node, 0);
  }

 private:
  absl::Status Next(YamlEvent* event) {
    if (yaml_parser_parse(&parser_, event->get()) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what_, ": line ", parser_.problem_mark.line + 1, ": ",
                       parser_.problem != nullptr ? parser_.problem : "malformed YAML",
                       parser_.context != nullptr ? absl::StrCat(" ", parser_.context) : ""));
    }
    event->set_valid();
    return absl::OkStatus();
  }

  absl::Status Error(const yaml_event_t& event, absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat(what_, ": line ", event.start_mark.line + 1, ": ", why));
  }

  // The value whose first event is `first`.
  absl::StatusOr<Json> Node(const YamlEvent& first, int depth) {
    const yaml_event_t& e = *first;
    if (depth > kMaxJsonDepth) {
      return Error(e, "nested too deeply");
    }
    Json value;
    std::string anchor;
    const size_t values_before = values_;
    if (e.type != YAML_ALIAS_EVENT && ++values_ > kMaxYamlValues) {
      return Error(e, absl::StrCat("more than ", kMaxYamlValues, " values"));
    }
    switch (e.type) {
      case YAML_ALIAS_EVENT: {
        auto it = anchors_.find(Anchor(e.data.alias.anchor));
        if (it == anchors_.end()) {
          return Error(e, absl::StrCat("unknown alias *", Anchor(e.data.alias.anchor)));
        }
        values_ += it->second.second;
        if (values_ > kMaxYamlValues) {
          return Error(e, absl::StrCat("aliases expand to more than ", kMaxYamlValues, " values"));
        }
        return it->second.first;
      }
      case YAML_SCALAR_EVENT: {
        std::string text(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
        const std::string tag = Anchor(e.data.scalar.tag);
        // Quoted and block scalars, and !!str, are strings; plain ones (and
        // other tags) resolve by their text.
        const bool is_string = tag == "tag:yaml.org,2002:str" || tag == "!" ||
                               (tag.empty() && e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE);
        if (is_string) {
          value = std::move(text);
        } else {
          value = ResolvePlain(text);
        }
        anchor = Anchor(e.data.scalar.anchor);
        break;
      }
      case YAML_SEQUENCE_START_EVENT: {
        anchor = Anchor(e.data.sequence_start.anchor);
        value = Json::array();
        for (;;) {
          YamlEvent item;
          CRID_YAML_NEXT(item);
          if ((*item).type == YAML_SEQUENCE_END_EVENT) {
            break;
          }
          absl::StatusOr<Json> element = Node(item, depth + 1);
          if (!element.ok()) {
            return element.status();
          }
          value.push_back(std::move(*element));
        }
        break;
      }
      case YAML_MAPPING_START_EVENT: {
        anchor = Anchor(e.data.mapping_start.anchor);
        value = Json::object();
        for (;;) {
          YamlEvent key;
          CRID_YAML_NEXT(key);
          if ((*key).type == YAML_MAPPING_END_EVENT) {
            break;
          }
          if ((*key).type != YAML_SCALAR_EVENT) {
            return Error(*key, "a mapping key must be a scalar");
          }
          std::string name(reinterpret_cast<const char*>((*key).data.scalar.value),
                           (*key).data.scalar.length);
          if (value.contains(name)) {
            return Error(*key, absl::StrCat("duplicate key \"", name, "\""));
          }
          YamlEvent item;
          CRID_YAML_NEXT(item);
          absl::StatusOr<Json> element = Node(item, depth + 1);
          if (!element.ok()) {
            return element.status();
          }
          value[name] = std::move(*element);
        }
        break;
      }
      default:
        return Error(e, "unexpected YAML event");
    }
    if (!anchor.empty()) {
      anchors_[anchor] = {value, values_ - values_before};
    }
    return value;
  }
#undef CRID_YAML_NEXT

  std::string what_;
  yaml_parser_t parser_{};
  // Anchored values, each with how many values it counts for where an alias
  // repeats it.
  std::map<std::string, std::pair<Json, size_t>> anchors_;
  size_t values_ = 0;  // values made so far, aliases expanded
};

}  // namespace

absl::StatusOr<Json> YamlToJson(absl::string_view text, absl::string_view what) {
  YamlReader reader(text, what);
  return reader.FirstDocument();
}

}  // namespace crid
