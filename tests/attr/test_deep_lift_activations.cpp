// DeepLift's rescale rule on Sigmoid, Tanh and LeakyReLU, and Captum's softmax rule (rescale, then
// minus the mean over every element of the doubled batch), against Captum 0.8 on a small MLP with
// non-zero baselines: tools/oracle/deeplift_activations.py printed the numbers below.
#include <gtest/gtest.h>

#include <vector>

#include "gradlens/attr/deep_lift.h"
#include "gradlens/autograd/ops.h"
#include "tests/testing.h"

namespace {

using namespace gradlens;

// tools/oracle/deeplift_activations.py (torch.manual_seed(7))
const std::vector<float> k_fc1_weight = {
    1.21231437f,    -0.747245908f, -1.36178398f,    -0.342721581f, 1.35920882f,     0.361790657f,
    -0.0948159099f, -0.428791881f, 1.31705797f,     -1.4413588f,   0.849965751f,    0.407274663f,
    0.940307558f,   -0.869399965f, -0.49182111f,    -0.630380809f, 1.45548499f,     -0.193688393f,
    -1.43031979f,   0.752133071f,  0.289212406f,    0.205258012f,  -1.00027633f,    -1.405159f,
    1.35918379f,    -1.1297152f,   -0.285034776f,   -0.274921417f, 0.856649816f,    -1.26456177f,
    -0.858533978f,  -0.803833365f, -0.756330729f,   0.917631984f,  0.918187201f,    0.680447817f,
    1.2244277f,     -0.997605979f, -0.00595647097f, -1.21387982f,  -0.00293666124f, -1.28202796f,
    -1.44474828f,   0.94481045f,   -0.663793445f,   -0.119514585f, -0.44213748f,    -1.18972659f};
const std::vector<float> k_fc1_bias = {-0.149645627f,
                                       0.221583188f,
                                       1.19853973f,
                                       -0.638085008f,
                                       1.42917943f,
                                       -0.694522619f,
                                       0.960144997f,
                                       1.31019974f};
const std::vector<float> k_fc2_weight = {
    0.1550982f,    -0.515165627f, 1.10958159f,    -0.437543392f,  -0.642156243f, -0.522917747f,
    -1.22339654f,  -0.149887025f, -1.22030544f,   0.982341707f,   -1.4446764f,   -1.11438394f,
    0.297365248f,  0.927951694f,  1.43465996f,    -1.21567583f,   1.23221469f,   1.05103779f,
    -0.98402667f,  0.625370085f,  -0.421949923f,  0.431771457f,   -1.32791567f,  -0.861262679f,
    -0.950962186f, -0.292524576f, -0.0545682907f, -0.0322782397f, -0.886114776f, 0.740861177f,
    0.761990368f,  -1.3158313f,   -1.39037955f,   -0.322325706f,  0.417265534f,  -1.14247823f,
    -0.138130546f, 0.0851322412f, -1.14615774f,   1.40463972f,    1.08638358f,   1.14570475f,
    -0.611659527f, -1.0720706f,   0.184182465f,   0.877358615f,   0.733791232f,  -0.97313118f,
    1.17755723f,   -0.711122453f, -0.262236536f,  -0.420581102f,  0.714152455f,  -1.39954972f,
    -0.955147326f, -0.18150419f,  1.03252912f,    -0.361164629f,  0.941133142f,  1.37367117f,
    0.0563700199f, -1.01029968f,  0.00834488869f, 0.583628654f};
const std::vector<float> k_fc2_bias = {-0.319453061f,
                                       -1.46454728f,
                                       0.892712474f,
                                       -0.653692245f,
                                       -1.04912639f,
                                       0.764461577f,
                                       0.361055553f,
                                       1.09286642f};
const std::vector<float> k_fc3_weight = {
    -0.302915812f, 0.92753756f,    -0.356168568f,  -0.931328952f,   1.38471615f,    1.47586298f,
    1.06900215f,   -0.418664575f,  -0.654462576f,  0.26518321f,     0.755134821f,   0.191400826f,
    0.631580114f,  -0.0716323256f, 0.850785434f,   0.711596847f,    0.854403019f,   -0.112308562f,
    -1.23451102f,  -0.940774262f,  -0.748645663f,  1.26855791f,     -0.0756331086f, -0.201443374f,
    -0.585160911f, -0.0629873872f, 1.01104069f,    0.000332951546f, 0.69643575f,    0.858975828f,
    -1.46092701f,  0.52458179f,    1.49876225f,    -0.760085464f,   0.243725538f,   0.033733964f,
    0.792864919f,  0.361395299f,   -1.12693369f,   -1.12044311f,    1.28078663f,    -0.646529675f,
    -1.31835985f,  -1.34617519f,   -1.30499363f,   0.342485726f,    0.17340374f,    -0.870761275f,
    -0.338860273f, 0.234490335f,   0.546405315f,   0.61241287f,     -0.807482064f,  1.41346765f,
    1.40124726f,   -1.06525493f,   1.39035666f,    -1.22883117f,    -0.990017295f,  0.296150565f,
    0.439917505f,  1.33380139f,    0.00755041838f, 1.01308501f};
const std::vector<float> k_fc3_bias = {-0.500013649f,
                                       -1.09301901f,
                                       -0.145840824f,
                                       0.778728247f,
                                       -0.586000443f,
                                       -1.26968145f,
                                       -0.913715422f,
                                       0.26572144f};
const std::vector<float> k_fc4_weight = {
    1.4303205f,    0.0829238892f, -1.20919061f,   -0.671533406f, 0.761264741f,  -0.472079873f,
    -0.202466905f, 1.11589885f,   0.551355422f,   0.918280363f,  1.34663916f,   -0.493701518f,
    0.217468321f,  -1.12541246f,  1.4909718f,     -1.00546837f,  1.4257977f,    1.37336349f,
    0.326316476f,  -1.29688692f,  -0.0483443141f, -0.618194461f, 0.459831655f,  0.848222136f,
    0.835367739f,  0.481727242f,  -1.14938426f,   -1.26168227f,  0.442887783f,  -0.329065561f,
    0.701056302f,  1.45787609f,   0.452960372f,   -0.903265893f, -0.433148324f, 0.924239337f,
    0.14244926f,   1.02284551f,   -1.43776703f,   -0.184832096f};
const std::vector<float> k_fc4_bias = {
    -0.731526911f, 1.13985872f, 0.656114817f, -0.201109707f, -1.39174426f};
const std::vector<float> kInputs = {-0.987187624f,
                                    -0.0878566802f,
                                    0.303905904f,
                                    1.76793492f,
                                    -0.758860826f,
                                    -1.78624845f,
                                    0.0400489606f,
                                    0.121337153f,
                                    0.68249625f,
                                    -1.28014863f,
                                    0.0370726325f,
                                    0.122985005f,
                                    -2.78607416f,
                                    -0.54741621f,
                                    0.84101212f,
                                    0.648909032f,
                                    0.0830713883f,
                                    -2.3213439f};
const std::vector<float> kBaselines = {0.234103292f,
                                       0.0811940357f,
                                       -0.468714148f,
                                       0.409517318f,
                                       -0.200343996f,
                                       0.29290095f,
                                       0.325501293f,
                                       -0.647081435f,
                                       0.283598214f,
                                       0.984258711f,
                                       0.266178459f,
                                       -0.217334047f,
                                       -0.352099925f,
                                       0.376209497f,
                                       -0.543785512f,
                                       -0.509536862f,
                                       -0.597176373f,
                                       0.149890631f};
const std::vector<float> kLogitsAttributions = {0.0479426384f,
                                                -0.107464224f,
                                                0.0139192566f,
                                                0.367860705f,
                                                0.150981799f,
                                                -0.349936336f,
                                                -0.286399007f,
                                                0.149327949f,
                                                -0.218460307f,
                                                0.279864073f,
                                                0.0551407635f,
                                                -0.215049818f,
                                                2.4335773f,
                                                -0.203226969f,
                                                0.538310349f,
                                                0.201557174f,
                                                0.0783981234f,
                                                -2.05283499f};
const std::vector<float> kLogitsDelta = {6.55651093e-07f, 8.34465027e-07f, 3.57627869e-07f};
const std::vector<float> kSoftmaxAttributions = {0.11431706f,
                                                 -0.00050333672f,
                                                 0.00790417474f,
                                                 0.0474162064f,
                                                 -0.000185139215f,
                                                 -0.0901913643f,
                                                 -0.0303417128f,
                                                 0.0149324108f,
                                                 -0.0222047158f,
                                                 0.0467962585f,
                                                 0.00868288893f,
                                                 -0.0321924128f,
                                                 1.02689779f,
                                                 -0.0752847195f,
                                                 0.236848414f,
                                                 0.0706286803f,
                                                 0.0364691578f,
                                                 -0.859102845f};
const std::vector<float> kSoftmaxDelta = {0.0734750107f, 0.0267501846f, 0.11161837f};

Tensor t(const std::vector<float>& v, Shape shape) {
  return Tensor::from_vector(v, std::move(shape));
}

attr::ForwardFn mlp(bool softmax_head) {
  return [softmax_head](const Tensor& x) {
    Tensor h = sigmoid(linear(x, t(k_fc1_weight, {8, 6}), t(k_fc1_bias, {8})));
    h = tanh(linear(h, t(k_fc2_weight, {8, 8}), t(k_fc2_bias, {8})));
    h = leaky_relu(linear(h, t(k_fc3_weight, {8, 8}), t(k_fc3_bias, {8})), 0.1f);
    const Tensor logits = linear(h, t(k_fc4_weight, {5, 8}), t(k_fc4_bias, {5}));
    return softmax_head ? softmax(logits) : logits;
  };
}

TEST(DeepLiftActivations, SigmoidTanhLeakyReluAndSoftmaxMatchCaptum) {
  const Tensor x = t(kInputs, {3, 6}), baselines = t(kBaselines, {3, 6});
  const std::vector<std::int64_t> targets = {0, 2, 4};
  for (const bool softmax_head : {false, true}) {
    SCOPED_TRACE(softmax_head ? "softmax head" : "logits");
    attr::DeepLift deeplift(mlp(softmax_head));
    const attr::Attributions a = deeplift.attribute(x, targets, baselines);
    EXPECT_TRUE(gradlens::testing::allclose(
        a.values, t(softmax_head ? kSoftmaxAttributions : kLogitsAttributions, {3, 6}), 0, 2e-6));
    // Captum's softmax rule breaks summation to delta on purpose (0.03 - 0.11 here): ours too.
    EXPECT_TRUE(gradlens::testing::allclose(
        a.delta, t(softmax_head ? kSoftmaxDelta : kLogitsDelta, {3}), 0, 2e-6));
  }
}

}  // namespace
