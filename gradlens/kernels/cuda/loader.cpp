// registry.h's CUDA entry points in a CUDA-enabled build: open libgradlens_cuda.so (plugin.h) the
// first time a CUDA device is asked for, and forward to it. Where it cannot be loaded (no plugin
// installed, or its libraries missing) CUDA is unavailable and every CPU program still runs.
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gradlens/kernels/cuda/plugin.h"

namespace gradlens::detail {

namespace {

namespace fs = std::filesystem;

struct LoadedPlugin {
  const CudaPlugin* table = nullptr;
  std::string path;   // where it was loaded from
  std::string error;  // why table is null
};

// Where the plugin may be, in order. An explicit GRADLENS_CUDA_BACKEND is the only place looked.
std::vector<std::string> candidates() {
  if (const char* env = std::getenv("GRADLENS_CUDA_BACKEND"); env != nullptr && *env != '\0') {
    return {env};
  }
  std::vector<std::string> places;
  auto add_dir = [&places](const fs::path& dir) {
    for (const fs::path& d :
         {dir, dir / GRADLENS_INSTALL_LIBDIR, dir / ".." / GRADLENS_INSTALL_LIBDIR}) {
      std::error_code ec;
      const fs::path file = fs::weakly_canonical(d / kCudaPluginFile, ec);
      if (ec) continue;
      const std::string text = file.string();
      if (std::find(places.begin(), places.end(), text) == places.end()) places.push_back(text);
    }
  };
  // Beside the library or program this code is in (a shared libgradlens, an installed program in
  // bin/ with the plugin in lib/, a build tree's program), then beside the running program.
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cuda_device_present), &info) != 0 &&
      info.dli_fname != nullptr && std::strchr(info.dli_fname, '/') != nullptr) {
    add_dir(fs::path(info.dli_fname).parent_path());
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) add_dir(self.parent_path());
  places.push_back(kCudaPluginFile);  // the dynamic linker's own search (LD_LIBRARY_PATH, RUNPATH)
  places.push_back((fs::path(GRADLENS_INSTALL_FULL_LIBDIR) / kCudaPluginFile).string());
  return places;
}

LoadedPlugin load() {
  LoadedPlugin result;
  std::string searched, failures;
  for (const std::string& place : candidates()) {
    const bool bare = place.find('/') == std::string::npos;
    std::error_code ec;
    if (!bare && !fs::exists(place, ec)) {
      searched += (searched.empty() ? "" : ", ") + place;
      continue;
    }
    void* handle = dlopen(place.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      // A bare name that the linker does not find is one more place searched, not a failure.
      if (bare && why != nullptr && std::strstr(why, "cannot open shared object file") != nullptr) {
        searched += (searched.empty() ? "" : ", ") + std::string("the library path");
        continue;
      }
      failures += "; " + place + ": " + (why != nullptr ? why : "dlopen failed");
      continue;
    }
    auto entry = reinterpret_cast<CudaPluginEntry>(dlsym(handle, kCudaPluginSymbol));
    if (entry == nullptr) {
      failures += "; " + place + ": no " + kCudaPluginSymbol + " in it";
      continue;
    }
    static const CudaPluginHost host{kCudaPluginAbi, GRADLENS_BUILD_VERSION, &matmul_precision};
    const CudaPlugin* table = entry(&host);
    if (table == nullptr || table->abi != kCudaPluginAbi ||
        std::strcmp(table->version, GRADLENS_BUILD_VERSION) != 0) {
      failures += "; " + place + " is from another gradlens build (" +
                  (table != nullptr ? std::string(table->version) : std::string("?")) +
                  "), this program is " + GRADLENS_BUILD_VERSION;
      continue;
    }
    result.table = table;
    Dl_info info{};
    const bool named = dladdr(reinterpret_cast<void*>(entry), &info) != 0 && info.dli_fname;
    result.path = named ? info.dli_fname : place;
    return result;
  }
  result.error = std::string("the CUDA backend ") + kCudaPluginFile + " could not be loaded: " +
                 (failures.empty() ? "not found in " + searched : failures.substr(2)) +
                 " (GRADLENS_CUDA_BACKEND may name it)";
  return result;
}

const LoadedPlugin& plugin() {
  static const LoadedPlugin loaded = load();  // thread-safe, once
  return loaded;
}

}  // namespace

Backend& cuda_backend(int index) {
  const LoadedPlugin& p = plugin();
  if (p.table == nullptr) {
    throw std::runtime_error("[device] cuda:" + std::to_string(index) + " requested, but " +
                             p.error);
  }
  return p.table->backend(index);
}

bool cuda_device_present() {
  const LoadedPlugin& p = plugin();
  return p.table != nullptr && p.table->device_present();
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* why, std::string* versions) {
  const LoadedPlugin& p = plugin();
  if (p.table == nullptr) {
    *why = p.error;
    versions->clear();
    return {};
  }
  auto devices = p.table->devices(why, versions);
  *versions += ", kernels " + p.path;
  return devices;
}

}  // namespace gradlens::detail
