// gradlens info: the version, how it was built, the CPU and the kernel variant chosen for it,
// threads, and the CUDA devices (or why there are none): what a bug report needs.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "gradlens/kernels/build_info.h"
#include "gradlens/kernels/cpu/common/isa.h"
#include "gradlens/kernels/registry.h"
#include "tools/gradlens/commands.h"

namespace gradlens::cli {

namespace {

void run_info() {
  if (parse_only()) return;
  const BuildInfo& b = build_info();
  std::printf("gradlens %s\n", b.version.c_str());
  std::printf("build:    %s, %s, flags \"%s\"\n",
              b.build_type.c_str(),
              b.compiler.c_str(),
              b.flags.c_str());
  std::printf("          CPU kernels compiled: %s; CUDA kernels: %s\n",
              b.cpu_variants.c_str(),
              b.cuda.c_str());
  std::printf("cpu:      %s, %u hardware threads\n",
              cpu::cpu_brand().c_str(),
              std::thread::hardware_concurrency());
  std::printf("          features: %s\n", cpu::cpu_features().c_str());
  const cpu::Isa isa = cpu::active_isa();  // throws, one line, on a bad GRADLENS_CPU
  const char* forced = std::getenv("GRADLENS_CPU");
  const bool is_forced = forced != nullptr && *forced != '\0';
  std::printf("kernels:  %s (%s)\n",
              std::string(cpu::isa_name(isa)).c_str(),
              is_forced
                  ? "forced by GRADLENS_CPU"
                  : "the best this CPU supports; GRADLENS_CPU=generic|avx2|avx512 forces one");
  std::printf("threads:  %d\n", num_threads());
  std::string why, versions;
  const auto devices = detail::cuda_devices(&why, &versions);
  if (devices.empty()) {
    std::printf(
        "cuda:     none: %s%s%s\n", why.c_str(), versions.empty() ? "" : "; ", versions.c_str());
    return;
  }
  std::printf("cuda:     %zu device(s), %s\n", devices.size(), versions.c_str());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const auto& d = devices[i];
    std::printf("          cuda:%zu %s, compute capability %d.%d, %.1f GiB, %d SMs\n",
                i,
                d.name.c_str(),
                d.major,
                d.minor,
                static_cast<double>(d.total_memory) / (1 << 30),
                d.multiprocessors);
  }
}

}  // namespace

void add_info_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "info", "version, build, CPU and kernel variant, threads and CUDA devices");
  cmd->callback([] { run_info(); });
}

}  // namespace gradlens::cli
