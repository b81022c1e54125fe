"""Name parts for the synthetic demo province: surnames, given-name characters, streets, firms.

Lists are weighted by repetition where frequency matters (common surnames come first and are
drawn more often). Everything generated from them is fictitious.
"""

# The most common surnames, most frequent first; the generator draws with a Zipf-like weight.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "慕容")

GIVEN_MALE = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳建国峰亮成志文博晨轩睿泽天嘉豪铭瑞航"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀燕玲桂丹萍红玉兰琳洁梅雪倩颖婷慧莉晶佳欣怡雨涵悦诗梓璐思晓彤琪瑶妍雯"
GIVEN_NEUTRAL = "子一文安宇晨思可雨欣嘉乐心语"

ETHNICITIES = ("汉族",) * 96 + ("回族", "满族", "蒙古族", "朝鲜族")

STREETS = (
    "人民路", "解放路", "建设路", "和平路", "胜利路", "文化路", "幸福街", "光明路", "新华路", "中山路",
    "青年路", "工业路", "朝阳路", "长江路", "黄河路", "泰山路", "花园路", "振兴街", "育才路", "康宁路",
)
VILLAGE_ROADS = ("村东街", "村西街", "前街", "后街", "中心街", "南北大街")

FIRM_WORDS = (
    "鑫诚", "华泰", "恒达", "宏远", "金源", "瑞丰", "盛世", "隆昌", "永信", "新航", "天润", "中科",
    "齐鲁", "海岳", "汇通", "博远", "九州", "锦程", "德信", "聚力", "沃野", "明德", "鼎盛", "凯瑞",
)

# industry → (name part, business scope)
INDUSTRIES = (
    ("商贸", "日用百货、五金交电、服装鞋帽的批发与零售。"),
    ("科技", "软件开发；信息技术咨询服务；计算机系统集成。"),
    ("建筑工程", "房屋建筑工程、市政公用工程施工；建筑材料销售。"),
    ("餐饮管理", "餐饮服务；食品经营；餐饮企业管理咨询。"),
    ("物流", "普通货物道路运输；仓储服务（不含危险化学品）；货物配送。"),
    ("农业发展", "蔬菜、水果种植与销售；农业技术推广服务。"),
    ("机械制造", "通用设备制造；机械零部件加工及销售。"),
    ("食品", "食品生产；预包装食品销售。"),
    ("医药", "药品零售；医疗器械经营；保健食品销售。"),
    ("文化传媒", "广告设计、制作、发布；组织文化艺术交流活动。"),
    ("环保科技", "环保技术开发；污水处理及其再生利用。"),
)

SHOPS = ("便利店", "小吃店", "五金店", "理发店", "水果店", "服装店", "维修部", "超市")
CROPS = ("蔬菜", "果品", "小麦", "花生", "苹果", "生姜")

# Administrative licences for 双公示: (decision title, certificate, number prefix, deciding department kinds in
# order of preference from county up, licence category, years valid or 0 for long-term, content).
LICENCES = (
    ("食品经营许可决定书", "食品经营许可证", "JY", ("XZSP", "SCJG"), "general", 5,
     "准予食品经营许可：预包装食品（含冷藏冷冻食品）销售；散装食品销售；热食类食品制售。"),
    ("道路运输经营许可决定书", "道路运输经营许可证", "DY", ("XZSP", "JT"), "general", 4,
     "准予从事道路普通货物运输经营。"),
    ("建筑业企业资质许可决定书", "建筑业企业资质证书", "D", ("XZSP", "ZJ"), "recognition", 5,
     "准予建筑工程施工总承包三级资质。"),
    ("排污许可决定书", "排污许可证", "PW", ("XZSP", "STHJ"), "general", 5,
     "准予按许可的排放浓度、排放量排放大气污染物和水污染物。"),
    ("公共场所卫生许可决定书", "公共场所卫生许可证", "WS", ("XZSP", "WJ"), "general", 4,
     "准予经营住宿、美容美发公共场所。"),
)

# Administrative penalties: (violation, facts, legal basis, deciding department kind, category, fine range in yuan).
PENALTIES = (
    ("销售不符合食品安全标准的食品", "经抽检，当事人销售的食品菌落总数不符合食品安全国家标准。",
     "《中华人民共和国食品安全法》第一百二十四条", "SCJG", "fine", (5000, 50000)),
    ("发布虚假广告", "当事人在其网店页面发布含有虚假内容的商品广告。",
     "《中华人民共和国广告法》第五十五条", "SCJG", "fine", (20000, 200000)),
    ("不明码标价", "当事人经营场所销售的商品未按规定明码标价。",
     "《中华人民共和国价格法》第四十二条", "SCJG", "warning", (0, 0)),
    ("虚假宣传", "当事人对其商品的性能、功能作虚假的商业宣传。",
     "《中华人民共和国反不正当竞争法》第二十条", "SCJG", "fine", (100000, 500000)),
    ("未取得排污许可证排放污染物", "当事人未取得排污许可证，擅自排放工业废水。",
     "《排污许可管理条例》第三十三条", "STHJ", "fine", (200000, 1000000)),
    ("未取得道路运输经营许可擅自从事道路运输经营", "当事人未取得道路运输经营许可，擅自从事普通货物运输。",
     "《中华人民共和国道路运输条例》第六十三条", "JT", "fine", (10000, 100000)),
)

# Red and black lists: (list type, list name, reason, basis, listing department kind).
CREDIT_LISTS = (
    ("red", "纳税信用A级纳税人名单", "年度纳税信用评价为A级。", "《纳税信用管理办法（试行）》", "SW"),
    ("red", "守合同重信用企业名单", "连续两年履约情况良好，经公示无异议。", "省守合同重信用企业公示办法", "SCJG"),
    ("black", "严重违法失信名单", "因虚假宣传、发布虚假广告被处以较重行政处罚，情节严重。",
     "《市场监督管理严重违法失信名单管理办法》", "SCJG"),
    ("black", "拖欠农民工工资失信联合惩戒对象名单", "拖欠农民工工资，经责令限期支付逾期未支付。",
     "《拖欠农民工工资失信联合惩戒对象名单管理暂行办法》", "RS"),
)

# Economic indicators: (code, name, unit, kind, base value for a city per quarter, spread).
# kind "sum": the province is the sum of its cities; "rate": the province is their mean.
INDICATORS = (
    ("GDP", "地区生产总值", "亿元", "sum", 1500, 0.6),
    ("GDP_GROWTH", "地区生产总值增长率", "%", "rate", 5.5, 0.25),
    ("VAI_GROWTH", "规模以上工业增加值增长率", "%", "rate", 7.0, 0.35),
    ("RETAIL", "社会消费品零售总额", "亿元", "sum", 650, 0.6),
    ("FAI_GROWTH", "固定资产投资增长率", "%", "rate", 4.0, 0.8),
    ("REVENUE", "一般公共预算收入", "亿元", "sum", 110, 0.6),
    ("INCOME_URBAN", "城镇居民人均可支配收入", "元", "rate", 13000, 0.2),
    ("CPI", "居民消费价格指数（上年同期=100）", "上年同期=100", "rate", 100.4, 0.004),
)

# Points of interest per county: (category, name pattern with {county}).
POIS = (
    ("service_center", "{county}政务服务中心"),
    ("government", "{county}人民政府"),
    ("hospital", "{county}人民医院"),
    ("school", "{county}第一中学"),
    ("park", "{county}人民公园"),
    ("transport", "{county}汽车站"),
)

# Emergency resources per county: (kind, name pattern, category, capacity range, unit).
EMERGENCY_RESOURCES = (
    ("shelter", "{county}中心广场应急避难场所", "Ⅱ类", (3000, 20000), "人"),
    ("shelter", "{county}体育场应急避难场所", "Ⅲ类", (1000, 8000), "人"),
    ("warehouse", "{county}应急物资储备库", "综合", (500, 5000), "平方米"),
    ("supply", "{county}储备救灾帐篷", "帐篷", (100, 2000), "顶"),
    ("supply", "{county}储备棉被", "被服", (500, 10000), "床"),
    ("team", "{county}综合应急救援大队", "综合救援", (30, 150), "人"),
)
