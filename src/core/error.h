#pragma once
// Errors that cross an API boundary carry one sentence a user can act on.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace morphserve {

// Base of every error morphserve raises on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model file that cannot be used: bad magic, truncated, unsupported type, missing tensor...
class ModelFileError : public Error {
 public:
  using Error::Error;
};

// A parameter the user gave that cannot be honoured (bad flag value, impossible shape...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Resident memory would exceed the configured budget.
class OutOfBudget : public Error {
 public:
  using Error::Error;
};

template <typename E = Error, typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw E(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace morphserve
