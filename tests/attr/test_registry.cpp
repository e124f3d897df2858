// The registry is the one list of methods: every entry is a method the library builds under that
// name, and a wrong name is an error listing the right ones.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "gradlens/attr/registry.h"
#include "gradlens/gradlens.h"
#include "tests/testing.h"

using namespace gradlens;

TEST(Registry, EveryEntryIsAMethodOfThatName) {
  nn::Net net(1);
  const attr::ForwardFn f(net);
  // The classes by hand, once, to check the registry's names against their name().
  const std::vector<std::unique_ptr<attr::Attribution>> built = [&] {
    std::vector<std::unique_ptr<attr::Attribution>> v;
    v.push_back(std::make_unique<attr::Saliency>(f));
    v.push_back(std::make_unique<attr::InputXGradient>(f));
    v.push_back(std::make_unique<attr::IntegratedGradients>(f));
    v.push_back(std::make_unique<attr::DeepLift>(f));
    v.push_back(std::make_unique<attr::DeepLiftShap>(f));
    v.push_back(std::make_unique<attr::GradientShap>(f));
    v.push_back(std::make_unique<attr::GuidedBackprop>(f));
    v.push_back(std::make_unique<attr::Deconvolution>(f));
    v.push_back(std::make_unique<attr::LayerGradCam>(net, "conv2"));
    v.push_back(std::make_unique<attr::GuidedGradCam>(net, "conv2"));
    v.push_back(std::make_unique<attr::LRP>(f));
    v.push_back(std::make_unique<attr::Occlusion>(
        f, attr::OcclusionOptions{.sliding_window_shapes = {3, 8, 8}}));
    v.push_back(std::make_unique<attr::FeatureAblation>(f));
    return v;
  }();
  ASSERT_EQ(attr::methods().size(), built.size());
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < built.size(); ++i) {
    const attr::MethodInfo& m = attr::methods()[i];
    EXPECT_EQ(built[i]->name(), m.name);
    EXPECT_TRUE(names.insert(m.name).second) << m.name << " twice";
    EXPECT_EQ(&attr::method_info(m.name), &m);
  }
  const std::string message =
      gradlens::testing::invalid_argument_message([] { attr::method_info("deep_lift"); });
  EXPECT_NE(message.find("unknown method 'deep_lift'"), std::string::npos) << message;
  EXPECT_NE(message.find(attr::method_names_text()), std::string::npos) << message;
}
