#include "gcs/timestamps.hpp"

#include <cstdint>

#include "gcs/decimal.hpp"

namespace ringfetch::gcs {
namespace {

bool all_digits(std::string_view s) noexcept { return decimal(s).has_value(); }

int number(std::string_view s) noexcept {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

int month_number(std::string_view name) noexcept {
  constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (name == months[i]) return i + 1;
  }
  return 0;
}

// "HH:MM:SS" → seconds of the day.
std::optional<std::chrono::seconds> time_of_day(std::string_view s) noexcept {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  auto h = decimal(s.substr(0, 2)), m = decimal(s.substr(3, 2)), sec = decimal(s.substr(6, 2));
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  return std::chrono::seconds(*h * 3600 + *m * 60 + *sec);
}

std::optional<std::chrono::system_clock::time_point> make_time(std::uint64_t y, int month, std::uint64_t d,
                                                              std::chrono::seconds of_day) {
  using namespace std::chrono;
  // system_clock counts nanoseconds in 64 bits: only years 1678–2261 are representable.
  if (y < 1678 || y > 2261 || d < 1 || d > 31 || month < 1) return std::nullopt;
  year_month_day date{year(static_cast<int>(y)), std::chrono::month(static_cast<unsigned>(month)),
                      day(static_cast<unsigned>(d))};
  if (!date.ok()) return std::nullopt;
  return system_clock::time_point(sys_days(date)) + of_day;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
      text[13] != ':' || text[16] != ':')
    return std::nullopt;
  std::string_view fields[] = {text.substr(0, 4), text.substr(5, 2), text.substr(8, 2),
                               text.substr(11, 2), text.substr(14, 2), text.substr(17, 2)};
  for (auto f : fields) {
    if (!all_digits(f)) return std::nullopt;
  }
  year_month_day date{year(number(fields[0])), month(static_cast<unsigned>(number(fields[1]))),
                      day(static_cast<unsigned>(number(fields[2])))};
  int hh = number(fields[3]), mm = number(fields[4]), ss = number(fields[5]);
  if (!date.ok() || hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  // system_clock counts nanoseconds in 64 bits: only years 1678–2261 are representable.
  if (number(fields[0]) < 1678 || number(fields[0]) > 2261) return std::nullopt;

  std::string_view rest = text.substr(19);
  nanoseconds fraction{0};
  if (!rest.empty() && rest.front() == '.') {
    std::size_t n = 1;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    if (n == 1) return std::nullopt;
    std::int64_t scale = 100000000;
    for (std::size_t i = 1; i < n; ++i, scale /= 10) fraction += nanoseconds((rest[i] - '0') * scale);
    rest = rest.substr(n);
  }
  minutes offset{0};
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
             all_digits(rest.substr(1, 2)) && all_digits(rest.substr(4, 2))) {
    int oh = number(rest.substr(1, 2)), om = number(rest.substr(4, 2));
    if (oh > 23 || om > 59) return std::nullopt;
    offset = minutes(oh * 60 + om);
    if (rest[0] == '-') offset = -offset;
  } else {
    return std::nullopt;
  }
  auto local = sys_days(date) + hours(hh) + minutes(mm) + seconds(ss) + fraction;
  return time_point_cast<system_clock::duration>(local - offset);
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (text.size() == 29 && text[3] == ',' && text[4] == ' ' && text[7] == ' ' && text[11] == ' ' &&
      text[16] == ' ' && text.substr(25) == " GMT") {
    auto d = decimal(text.substr(5, 2)), y = decimal(text.substr(12, 4));
    auto t = time_of_day(text.substr(17, 8));
    if (!d || !y || !t) return std::nullopt;
    return make_time(*y, month_number(text.substr(8, 3)), *d, *t);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years are 1970-2069 (RFC 9110 §5.6.7
  // says to read a year more than 50 years ahead as the past century).
  if (std::size_t comma = text.find(", "); comma != std::string_view::npos && comma >= 6 && comma <= 9) {
    std::string_view rest = text.substr(comma + 2);
    if (rest.size() != 22 || rest[2] != '-' || rest[6] != '-' || rest[9] != ' ' || rest.substr(18) != " GMT")
      return std::nullopt;
    auto d = decimal(rest.substr(0, 2)), yy = decimal(rest.substr(7, 2));
    auto t = time_of_day(rest.substr(10, 8));
    if (!d || !yy || !t) return std::nullopt;
    return make_time(*yy < 70 ? 2000 + *yy : 1900 + *yy, month_number(rest.substr(3, 3)), *d, *t);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (text.size() == 24 && text[3] == ' ' && text[7] == ' ' && text[10] == ' ' && text[19] == ' ') {
    std::string_view day_text = text.substr(8, 2);
    if (day_text[0] == ' ') day_text.remove_prefix(1);
    auto d = decimal(day_text), y = decimal(text.substr(20, 4));
    auto t = time_of_day(text.substr(11, 8));
    if (!d || !y || !t) return std::nullopt;
    return make_time(*y, month_number(text.substr(4, 3)), *d, *t);
  }
  return std::nullopt;
}

}  // namespace ringfetch::gcs
