// libgradlens.so (BUILD_SHARED_LIBS): its code is the static parts, linked in whole
// (gradlens/CMakeLists.txt); a shared library target needs one source of its own.
namespace gradlens {}
