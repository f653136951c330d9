// Errors as values: the library never exits; the CLI turns a Status into one line on stderr.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace lutra {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status error(std::string message) { return Status(std::move(message), false); }
  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }
  explicit operator bool() const { return ok_; }

 private:
  Status(std::string message, bool ok) : message_(std::move(message)), ok_(ok) {}
  std::string message_;
  bool ok_ = true;
};

inline Status ok_status() { return Status(); }

// A value or the error that prevented it.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                                  // NOLINT
  Result(Status error) : v_(std::move(error)) {}                             // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& value() const& { return std::get<T>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  const std::string& message() const {
    static const std::string none;
    return ok() ? none : std::get<Status>(v_).message();
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lutra

// Propagates an error Status from an expression returning Status.
#define LUTRA_TRY(expr)                     \
  do {                                      \
    ::lutra::Status lutra_s_ = (expr);      \
    if (!lutra_s_.ok()) return lutra_s_;    \
  } while (0)
