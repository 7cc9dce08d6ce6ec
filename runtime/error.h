// Errors a user or a caller can cause. Every check that can fail because of input throws
// mt::Error with a message that names the operation, the shapes/dtypes or the file/key involved.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
}  // namespace detail

}  // namespace mt

// MT_CHECK(cond, parts...): throw mt::Error(parts...) when cond is false.
#define MT_CHECK(cond, ...)                                            \
  do {                                                                 \
    if (!(cond)) throw ::mt::Error(::mt::detail::concat(__VA_ARGS__)); \
  } while (0)
