// Grad mode: when off (NoGradGuard), ops record nothing. Per thread, like PyTorch.
#pragma once

#include "gradlens/export.h"

namespace gradlens {

struct GRADLENS_API GradMode {
  static bool enabled();
  static void set_enabled(bool enabled);
};

/// RAII: no tape while it lives (inference, optimizer steps).
class GRADLENS_API NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// RAII: tape on again inside a no-grad region (attribution methods under NoiseTunnel).
class GRADLENS_API EnableGradGuard {
 public:
  EnableGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace gradlens
