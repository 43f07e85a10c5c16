async def test_help_reaches_a_registered_sender(service):
    delivery = await service.wecom.text("demo-liaison", "帮助")
    assert delivery.status == 200
    assert "张联络" in delivery.reply_text
