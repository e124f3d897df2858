// The registry is the one list of methods: every entry is a method the library builds under that
// name, and a wrong name is an error listing the right ones.
#include <gtest/gtest.h>

#include <map>
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

// Every option of every method is declared once with a default its own checks accept: each method
// builds by name with no option given, and describes every value it used.
TEST(Registry, EveryMethodBuildsByNameWithItsDefaults) {
  nn::Net net(1);
  std::map<std::string_view, attr::OptionType> types;
  auto same_meaning = [&types](const attr::OptionSpec& s) {
    const auto [it, inserted] = types.emplace(s.name, s.type);
    EXPECT_TRUE(inserted || it->second == s.type) << s.name << " has two types";
    EXPECT_FALSE(s.help.empty()) << s.name;
  };
  for (const attr::OptionSpec& s : attr::noise_tunnel_options()) same_meaning(s);
  for (const attr::MethodInfo& m : attr::methods()) {
    ASSERT_NE(m.make, nullptr) << m.name;
    for (const attr::OptionSpec& s : m.options) same_meaning(s);
    const std::unique_ptr<attr::Attribution> built = attr::make_method(m.name, net, {});
    EXPECT_EQ(built->name(), m.name);
    const std::string text = attr::describe_method(m.name, {});
    EXPECT_EQ(text.rfind(std::string(m.name) + "(", 0), 0u) << text;
    for (const attr::OptionSpec& s : m.options)
      EXPECT_NE(text.find(std::string(s.name) + "="), std::string::npos) << text;
  }
}

TEST(Registry, OptionsAreCheckedAgainstTheirSpecs) {
  nn::Net net(1);
  auto message = [&net](std::string_view method, attr::MethodArgs args) {
    return gradlens::testing::invalid_argument_message(
        [&] { attr::make_method(method, net, args); });
  };
  auto expect_in = [](const std::string& text, const std::string& part) {
    EXPECT_NE(text.find(part), std::string::npos) << text;
  };
  attr::MethodArgs args;
  args.values = {{"n_steps", "0"}};
  expect_in(message("integrated_gradients", args), "n_steps = '0' is out of range: 1 to 100000");
  args.values = {{"n_steps", "4294967297"}};
  expect_in(message("integrated_gradients", args), "out of range");
  args.values = {{"n_steps", "ten"}};
  expect_in(message("integrated_gradients", args), "is not an integer");
  args.values = {{"method", "simpson"}};
  expect_in(message("integrated_gradients", args), "is not one of gausslegendre,riemann_left");
  args.values = {{"n_steps", "8"}};
  expect_in(message("saliency", args), "saliency takes no option n_steps (its options: abs)");
  args.values = {{"nt_samples", "8"}};
  expect_in(message("saliency", args), "nt_samples is NoiseTunnel's");
  args.values = {{"stdevs", "-1"}, {"noise_tunnel", "smoothgrad"}};
  expect_in(message("saliency", args), "stdevs = '-1' is out of range");
  args.values = {{"stdevs", "nan"}, {"noise_tunnel", "smoothgrad"}};
  expect_in(message("saliency", args), "is not a finite number");
  args.values = {{"sliding_window_shapes", "3,0,8"}};
  expect_in(message("occlusion", args), "is not a list of sizes >= 1");
  args.values = {{"abs", "maybe"}};
  expect_in(message("saliency", args), "is not true or false");
}

TEST(Registry, NamedOptionsReachTheMethodAndTheTunnel) {
  nn::Net net(1);
  attr::MethodArgs args;
  args.values = {
      {"n_steps", "7"}, {"noise_tunnel", "smoothgrad_sq"}, {"nt_samples", "3"}, {"stdevs", "0.2"}};
  const std::unique_ptr<attr::Attribution> built =
      attr::make_method("integrated_gradients", net, args);
  auto* tunnel = dynamic_cast<attr::NoiseTunnel*>(built.get());
  ASSERT_NE(tunnel, nullptr);
  EXPECT_EQ(tunnel->options().nt_samples, 3);
  EXPECT_FLOAT_EQ(tunnel->options().stdevs, 0.2f);
  EXPECT_EQ(tunnel->options().type, attr::NoiseTunnelType::SmoothGradSq);
  auto* ig = dynamic_cast<attr::IntegratedGradients*>(&tunnel->base());
  ASSERT_NE(ig, nullptr);
  EXPECT_EQ(ig->options().n_steps, 7);
  EXPECT_EQ(attr::describe_method("integrated_gradients", args),
            "noise_tunnel(smoothgrad_sq, nt_samples=3, nt_samples_batch_size=0, stdevs=0.2, "
            "seed=0) of integrated_gradients(n_steps=7, method=gausslegendre, "
            "multiply_by_inputs=true, delta=false)");
  // The same result as the classes built by hand.
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 5);
  attr::IntegratedGradients by_hand_ig(net, {.n_steps = 7});
  attr::NoiseTunnel by_hand(
      std::move(by_hand_ig),
      {.type = attr::NoiseTunnelType::SmoothGradSq, .nt_samples = 3, .stdevs = 0.2f});
  EXPECT_EQ(built->attribute(x, 1).values.to_vector(), by_hand.attribute(x, 1).values.to_vector());
}
